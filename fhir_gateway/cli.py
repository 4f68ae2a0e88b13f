"""The ``telehub`` command line: one entry point, ``--help`` on every command."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from fhir_gateway.settings import Settings, SettingsError, load_settings


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
def main(verbose: bool) -> None:
    """Telehub: FHIR R4 hub and SMART on FHIR app."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _settings() -> Settings:
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    from fhir_gateway.observability import configure_logging

    configure_logging(settings)
    return settings


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", default=max(1, os.cpu_count() or 1), show_default=True, type=int,
              help="Worker processes.")
@click.option("--threads", default=4, show_default=True, type=int, help="Blocking threads per worker.")
@click.option("--dev", is_flag=True, help="Flask's debug server (single process, auto-reload).")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), envvar="TELEHUB_TLS_CERT",
              help="PEM certificate chain: serve HTTPS (TLS 1.2+ only, see infra/tls).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), envvar="TELEHUB_TLS_KEY",
              help="PKCS#8 PEM private key.")
@click.option("--tls-min-version", type=click.Choice(["tls1.2", "tls1.3"]), default="tls1.2", show_default=True)
def serve(host: str, port: int, workers: int, threads: int, dev: bool, tls_cert: str | None = None,
          tls_key: str | None = None, tls_min_version: str = "tls1.2") -> None:
    """Serve the FHIR API (granian, a production WSGI server; see bench/RESULTS.md for why)."""
    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    settings = _settings()
    if settings.env == "prod" and not tls_cert and host not in ("127.0.0.1", "localhost", "::1"):
        click.echo("warning: serving plain HTTP on a non-loopback address in production; terminate TLS "
                   "in front of it (infra/tls) or pass --tls-cert/--tls-key", err=True)
    from fhir_gateway.storage.engine import make_engine
    from fhir_gateway.storage.migrate import upgrade

    upgrade(make_engine(settings.database_url))
    if dev:
        from fhir_gateway.app import create_app

        ssl_context = None
        if tls_cert and tls_key:
            import ssl

            ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ssl_context.minimum_version = ssl.TLSVersion.TLSv1_2
            ssl_context.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
            ssl_context.load_cert_chain(tls_cert, tls_key)
        create_app(settings).run(host=host, port=port, debug=True, use_reloader=False, threaded=True,
                                 ssl_context=ssl_context)
        return
    # never granian's access log: it prints raw paths and query strings (PHI)
    argv = ["granian", "--interface", "wsgi", "--factory", "--host", host, "--port", str(port),
            "--workers", str(workers), "--blocking-threads", str(threads), "--no-ws",
            "--log-level", "warning"]
    if tls_cert and tls_key:
        argv += ["--ssl-certificate", tls_cert, "--ssl-keyfile", tls_key, "--ssl-protocol-min", tls_min_version]
    argv.append("fhir_gateway.wsgi:create")
    os.execvp(sys.executable, [sys.executable, "-m", *argv])


@main.group()
def db() -> None:
    """Database schema management."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations."""
    from fhir_gateway.storage.engine import make_engine
    from fhir_gateway.storage.migrate import upgrade

    upgrade(make_engine(_settings().database_url))
    click.echo("schema is up to date")


@main.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=True, path_type=Path))
@click.option("--on-error", type=click.Choice(["skip", "stop"]), default="stop", show_default=True,
              help="What to do with a bad line or entry.")
@click.option("--batch-size", default=200, show_default=True, type=int, help="Resources per database commit.")
@click.option("--restart", is_flag=True, help="Ignore saved progress and start from the beginning.")
@click.option("--no-progress", is_flag=True, help="Do not draw a progress bar.")
def import_(paths: tuple[Path, ...], on_error: str, batch_size: int, restart: bool, no_progress: bool) -> None:
    """Import transaction/batch Bundles, NDJSON and .gz files (streamed, resumable)."""
    from fhir_gateway.importer.run import run_import

    settings = _settings()
    report = run_import(settings, list(paths), on_error=on_error, batch_size=batch_size, restart=restart,
                        progress=not no_progress)
    click.echo(report.summary())
    if report.failed and on_error == "stop":
        sys.exit(1)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--reset-demo-users", is_flag=True, help="Give the demo users new passwords and TOTP secrets.")
def demo(host: str, port: int, reset_demo_users: bool = False) -> None:
    """Run the hub with embedded defaults (SQLite under ./var, no Redis), seeded with demo data and
    demo users, with the sandbox EHR at /sandbox. Development only: refused with TELEHUB_ENV=prod."""
    os.environ.setdefault("TELEHUB_ENV", "dev")
    os.environ.setdefault("TELEHUB_AUTH", "smart")
    os.environ.setdefault("TELEHUB_BASE_URL", f"http://{host}:{port}/fhir")
    settings = _settings()
    if settings.env == "prod":
        raise click.ClickException("telehub demo is for development: it is refused when TELEHUB_ENV=prod "
                                   "(use telehub serve)")
    from fhir_gateway.demo import banner, origin_of, seed_demo_data, seed_demo_users, serve_demo
    from fhir_gateway.storage.engine import make_engine
    from fhir_gateway.storage.migrate import upgrade

    upgrade(make_engine(settings.database_url))
    seeded = seed_demo_data(settings)
    if seeded:
        click.echo(f"seeded {seeded} demo resources")
    users = seed_demo_users(settings, reset=reset_demo_users)
    click.echo(banner(origin_of(settings), users))
    serve_demo(host, port)


def _register_command_groups() -> None:
    """Operator command groups that live beside the code they operate."""
    from fhir_gateway.audit.commands import audit
    from fhir_gateway.auth.commands import clients, users
    from fhir_gateway.auth.token_command import token
    from fhir_gateway.crypto.commands import keys
    from fhir_gateway.hl7.commands import hl7
    from fhir_gateway.upstream.onboard.command import onboard
    from fhir_gateway.upstream.sync_command import sync

    for group in (keys, audit, clients, users, token, sync, onboard, hl7):
        main.add_command(group)


_register_command_groups()


if __name__ == "__main__":
    main()
