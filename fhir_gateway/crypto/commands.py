"""``telehub keys …``: rotate data keys, re-encrypt, re-wrap under a new KEK, report per-key-version rows.

Settings come from the environment (``fhir_gateway.settings.load_settings``):
``TELEHUB_DATABASE_URL`` and ``TELEHUB_KEK_FILE``. Every command brings the schema
up to date first. Nothing printed here contains key material.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import orjson
from sqlalchemy import Engine
from tqdm import tqdm

from fhir_gateway.crypto.keyring import KeyRing, KeyRingError
from fhir_gateway.crypto.kms import FileKms, KmsError, load_kms
from fhir_gateway.crypto.rotation import DEFAULT_BATCH_SIZE, ReencryptReport, reencrypt, rewrap, rotate, status
from fhir_gateway.settings import Settings, SettingsError, load_settings


@contextmanager
def _database() -> Iterator[tuple[Settings, Engine]]:
    from fhir_gateway.storage.engine import make_engine
    from fhir_gateway.storage.migrate import upgrade

    try:
        settings = load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        yield settings, engine
    except (SettingsError, KeyRingError, KmsError) as exc:  # KekFileError is a SettingsError
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()


def _keyring(settings: Settings, engine: Engine) -> KeyRing:
    keyring = KeyRing(engine, load_kms(settings))
    keyring.ensure()
    return keyring


def _run_reencrypt(engine: Engine, keyring: KeyRing, batch_size: int, adopt_plaintext: bool,
                   show_progress: bool) -> ReencryptReport:
    total = status(engine).pending(include_unencrypted=adopt_plaintext)
    with tqdm(total=total, unit="rows", desc="re-encrypting", disable=not show_progress) as bar:
        report = reencrypt(engine, keyring, batch_size, bar.update, adopt_plaintext=adopt_plaintext)
    click.echo(f"re-encrypted {report.reencrypted} rows under data key {report.active_version}"
               + (f", encrypted {report.adopted} unencrypted rows" if adopt_plaintext else ""))
    if report.changed_meanwhile:
        click.echo(f"{report.changed_meanwhile} rows were rewritten by requests meanwhile and left as written")
    if report.failed:
        click.echo(f"{len(report.failed)} rows failed their integrity check and were left untouched "
                   "(table, pk): " + ", ".join(f"{t} {pk}" for t, pk in report.failed[:20])
                   + (" …" if len(report.failed) > 20 else ""), err=True)
    if report.remaining:
        click.echo(f"{report.remaining} rows are not yet under data key {report.active_version}; "
                   "run `telehub keys reencrypt` again", err=True)
    return report


@click.group()
def keys() -> None:
    """Data-encryption keys: rotate, re-encrypt, re-wrap under a new KEK, status.

    Resource bodies are encrypted with AES-256-GCM under versioned data keys; the
    data keys are stored wrapped by the key-encryption key in TELEHUB_KEK_FILE.
    """


_batch_size = click.option("--batch-size", default=DEFAULT_BATCH_SIZE, show_default=True,
                           type=click.IntRange(1, 100_000), help="Rows re-encrypted per transaction.")
_no_progress = click.option("--no-progress", is_flag=True, help="No progress bar.")


@keys.command("rotate")
@click.option("--reencrypt/--no-reencrypt", "do_reencrypt", default=True, show_default=True,
              help="Re-encrypt existing rows under the new key now (online; `telehub keys reencrypt` resumes it).")
@_batch_size
@_no_progress
def rotate_command(do_reencrypt: bool, batch_size: int, no_progress: bool) -> None:
    """Make a new data key active; old rows stay readable under their keys.

    Running servers start writing under the new key within 30 seconds.
    """
    with _database() as (settings, engine):
        keyring = _keyring(settings, engine)
        version = rotate(engine, keyring)
        click.echo(f"data key {version} is now active")
        if do_reencrypt:
            report = _run_reencrypt(engine, keyring, batch_size, False, not no_progress)
            if report.failed or report.remaining:
                raise SystemExit(1)


@keys.command("reencrypt")
@_batch_size
@click.option("--adopt-plaintext", is_flag=True,
              help="Also encrypt bodies written before encryption was turned on. Only for a database whose "
                   "unencrypted rows you trust: they are not authenticated.")
@_no_progress
def reencrypt_command(batch_size: int, adopt_plaintext: bool, no_progress: bool) -> None:
    """Re-encrypt every row not under the active data key (online, resumable: run it again after a stop)."""
    with _database() as (settings, engine):
        report = _run_reencrypt(engine, _keyring(settings, engine), batch_size, adopt_plaintext, not no_progress)
        if report.failed or report.remaining:
            raise SystemExit(1)


def _when(micros: int) -> str:
    return dt.datetime.fromtimestamp(micros / 1e6, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@keys.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status_command(as_json: bool) -> None:
    """Data keys (version, purpose, status, KEK id) and rows per key version in resource and resource_version."""
    with _database() as (_settings, engine):
        st = status(engine)
    if as_json:
        out: dict[str, Any] = {
            "active_version": st.active_version,
            "keys": [{"version": k.version, "purpose": k.purpose, "status": k.status, "kek_id": k.kek_id,
                      "created": _when(k.created)} for k in st.keys],
            "tables": {str(name): {"by_version": {str(v): n for v, n in t.by_version.items()},
                              "unencrypted": t.unencrypted, "empty": t.empty}
                       for name, t in st.tables.items()},
        }
        click.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        return
    if not st.keys:
        click.echo("no data keys yet (they are created when the server first starts)")
    else:
        click.echo(f"{'version':>7}  {'purpose':<12} {'status':<8} {'created':<20}  kek")
        for k in st.keys:
            click.echo(f"{k.version:>7}  {k.purpose:<12} {k.status:<8} {_when(k.created):<20}  {k.kek_id}")
    click.echo("")
    for name, t in st.tables.items():
        parts = [f"key {v}: {n}" for v, n in t.by_version.items()]
        if t.unencrypted:
            parts.append(f"unencrypted: {t.unencrypted}")
        parts.append(f"deleted (no body): {t.empty}")
        click.echo(f"{name}: " + ", ".join(parts))
    pending = st.pending()
    if pending:
        click.echo(f"{pending} rows are not under the active key {st.active_version}: "
                   "`telehub keys reencrypt` moves them")


@keys.command("rewrap")
@click.option("--new-kek-file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File holding the new key-encryption key (32 random bytes, base64).")
def rewrap_command(new_kek_file: Path) -> None:
    """Re-wrap every data key under a new KEK (TELEHUB_KEK_FILE is the current one). The data is untouched.

    Afterwards set TELEHUB_KEK_FILE to the new file on every server and restart them;
    keep the old KEK as long as backups taken before the re-wrap are kept.
    """
    with _database() as (settings, engine):
        old = load_kms(settings)
        new = FileKms.from_file(new_kek_file)
        if new.key_id == old.key_id:
            raise click.ClickException("the new KEK is the KEK in use")
        with tqdm(total=len(status(engine).keys), desc="re-wrapping", unit="keys") as bar:
            n = rewrap(engine, old, new, bar.update)
        click.echo(f"re-wrapped {n} data keys under KEK {new.key_id}; now set TELEHUB_KEK_FILE={new_kek_file} "
                   "on every server and restart them")
