"""``telehub sync --tenant T --patient ID [--since DATE]``: pull one patient's record from the clinic's EHR.

The tenant's connection file (``<connections dir>/<tenant>.toml``, see :mod:`.connection`) names
the vendor profile, the FHIR base and where the credentials are. Exit status 1 on any upstream
error, with a message that names no patient data.
"""
from __future__ import annotations

import dataclasses
import re

import click

from fhir_gateway.upstream.errors import UpstreamError

_SINCE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$")


@click.command("sync")
@click.option("--tenant", required=True, help="The clinic connection (its file is <connections dir>/<tenant>.toml).")
@click.option("--patient", "patient_id", required=True, help="The patient's id in the EHR.")
@click.option("--since", help="Only resources changed since this date or instant (YYYY-MM-DD[Thh:mm:ssZ]).")
@click.option("--types", help="Comma-separated resource types (default: every type the vendor profile syncs).")
@click.option("--connections-dir", envvar="TELEHUB_CONNECTIONS_DIR", default="var/connections", show_default=True,
              type=click.Path(file_okay=False), help="Where the clinic connection files are.")
def sync(tenant: str, patient_id: str, since: str | None, types: str | None, connections_dir: str) -> None:
    """Pull a patient's US Core data from the clinic's EHR into the hub (idempotent; with Provenance)."""
    if since and not _SINCE.match(since):
        raise click.BadParameter("use YYYY-MM-DD or an instant such as 2026-01-31T00:00:00Z", param_hint="--since")
    from fhir_gateway.app import build_services
    from fhir_gateway.observability import configure_logging
    from fhir_gateway.rest.context import Validator
    from fhir_gateway.settings import SettingsError, load_settings
    from fhir_gateway.upstream.audit import Auditor, MemoryAuditor, TrailAuditor
    from fhir_gateway.upstream.connection import load_connection
    from fhir_gateway.upstream.factory import build_client
    from fhir_gateway.upstream.sync import sync_patient

    try:
        settings = load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging(settings)
    # as `telehub import`: the full R4 walk validates; the R4B models reject some valid R4 vendor data
    services = dataclasses.replace(build_services(settings), validator=Validator(r4b_models=False))
    redis_client = None
    if settings.redis_url:
        import redis

        redis_client = redis.Redis.from_url(settings.redis_url)
    auditor: Auditor = (TrailAuditor(services.audit, services.repository.engine) if services.audit is not None
                        else MemoryAuditor())
    wanted = {t.strip() for t in types.split(",") if t.strip()} if types else None
    try:
        connection = load_connection(tenant, connections_dir)
        client = build_client(connection, redis_client=redis_client, auditor=auditor)
        report = sync_patient(services, client, patient_id, since=since, types=wanted)
    except UpstreamError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
    finally:
        close = getattr(services.audit, "close", None)  # the audit trail's appender connection, where it has one
        if callable(close):
            close()
        services.repository.engine.dispose()
    click.echo(report.summary())
