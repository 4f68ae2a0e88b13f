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
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", default=max(1, os.cpu_count() or 1), show_default=True, type=int,
              help="Worker processes.")
@click.option("--threads", default=4, show_default=True, type=int, help="Blocking threads per worker.")
@click.option("--dev", is_flag=True, help="Flask's debug server (single process, auto-reload).")
def serve(host: str, port: int, workers: int, threads: int, dev: bool) -> None:
    """Serve the FHIR API (granian, a production WSGI server; see bench/RESULTS.md for why)."""
    settings = _settings()
    from fhir_gateway.storage.engine import make_engine
    from fhir_gateway.storage.migrate import upgrade

    upgrade(make_engine(settings.database_url))
    if dev:
        from fhir_gateway.app import create_app

        create_app(settings).run(host=host, port=port, debug=True, use_reloader=False, threaded=True)
        return
    argv = ["granian", "--interface", "wsgi", "--factory", "--host", host, "--port", str(port),
            "--workers", str(workers), "--blocking-threads", str(threads), "--no-ws",
            "--log-level", "warning", "fhir_gateway.wsgi:create"]
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
def demo(host: str, port: int) -> None:
    """Run the hub with embedded defaults (SQLite under ./var, no Redis), seeded with demo data."""
    os.environ.setdefault("TELEHUB_ENV", "dev")
    os.environ.setdefault("TELEHUB_AUTH", "off")
    os.environ.setdefault("TELEHUB_BASE_URL", f"http://{host}:{port}/fhir")
    settings = _settings()
    from fhir_gateway.demo import seed_demo_data

    seeded = seed_demo_data(settings)
    if seeded:
        click.echo(f"seeded {seeded} demo resources")
    click.echo(f"Telehub FHIR API on http://{host}:{port}/fhir  (metadata: /fhir/metadata)")
    ctx = click.get_current_context()
    ctx.invoke(serve, host=host, port=port, workers=1, threads=2, dev=False)


if __name__ == "__main__":
    main()
