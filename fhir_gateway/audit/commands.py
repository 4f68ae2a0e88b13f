"""``telehub audit verify|export|purge``: the certification reviewer's and operator's view of the trail."""
from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import IO

import click
import orjson
from tqdm import tqdm

from fhir_gateway.access import RequestContext
from fhir_gateway.audit.events import AuditInput
from fhir_gateway.audit.trail import AuditTrail
from fhir_gateway.rest.context import FhirServices
from fhir_gateway.search.values import DateFormatError, date_range


def _services() -> tuple[FhirServices, AuditTrail]:
    from fhir_gateway.app import build_services
    from fhir_gateway.settings import load_settings

    services: FhirServices = build_services(load_settings())
    if services.audit is None:
        raise click.ClickException("the audit trail is not configured")
    return services, services.audit


def _instant(value: str | None, end: bool = False) -> int | None:
    if value is None:
        return None
    try:
        low, high = date_range(value)
    except DateFormatError:
        raise click.BadParameter(f"{value!r} is not a FHIR date or dateTime") from None
    return high if end else low


@click.group()
def audit() -> None:
    """The tamper-evident audit trail."""


@audit.command()
def verify() -> None:
    """Walk the hash chain; report the first edited, deleted, inserted or reordered entry."""
    services, trail = _services()
    with services.repository.transaction() as conn:
        report = trail.verify(conn)
    click.echo(str(report))
    if not report.ok:
        sys.exit(1)


@audit.command()
@click.option("--since", help="FHIR date/dateTime: entries recorded at or after it.")
@click.option("--until", help="FHIR date/dateTime: entries recorded up to the end of it.")
@click.option("--patient", help="Only entries about this Patient id.")
@click.option("--output", "-o", type=click.File("wb"), default="-", show_default=True, help="NDJSON file.")
def export(since: str | None, until: str | None, patient: str | None, output: IO[bytes]) -> None:
    """Write AuditEvents as NDJSON for reviewers (progress on stderr)."""
    services, trail = _services()
    written = 0
    with services.repository.transaction(write=True) as conn:
        total = trail.count(conn)
        bar = tqdm(total=total, unit=" entries", file=sys.stderr, disable=not sys.stderr.isatty())
        for event in trail.entries(conn, since=_instant(since), until=_instant(until, end=True),
                                            patient=patient):
            output.write(orjson.dumps(event) + b"\n")
            written += 1
            bar.update(1)
        bar.close()
        trail.append(conn, AuditInput("export", 200, RequestContext(client_id="telehub-cli", role="auditor"),
                                               description=f"audit export of {written} entries"))
    click.echo(f"exported {written} audit entries", err=True)


@audit.command()
@click.option("--before", required=True, help="FHIR date: remove entries recorded before it (>= 6 years old).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(before: str, yes: bool) -> None:
    """Apply the six-year retention: remove older entries; the purge itself is audited."""
    cutoff = _instant(before)
    assert cutoff is not None
    if not yes:
        click.confirm(f"Remove audit entries recorded before {before}?", abort=True)
    services, trail = _services()
    from fhir_gateway.errors import FhirError

    try:
        with services.repository.transaction(write=True) as conn:
            removed = trail.purge(conn, cutoff, AuditInput(
                "security", 200, RequestContext(client_id="telehub-cli", role="admin")))
    except FhirError as exc:
        raise click.ClickException(exc.diagnostics) from None
    click.echo(f"purged {removed} audit entries (as of {datetime.now(UTC).date()})")
