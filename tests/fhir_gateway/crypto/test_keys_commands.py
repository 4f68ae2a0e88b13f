"""``telehub keys rotate|reencrypt|status|rewrap``, driven through click on both databases."""
from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from fhir_gateway.crypto.commands import keys
from fhir_gateway.crypto.envelope import EnvelopeCodec
from fhir_gateway.crypto.keyring import KeyRing
from fhir_gateway.crypto.kms import FileKms
from fhir_gateway.search.extract import IndexExtractor
from fhir_gateway.search.hashing import PlainIndexHasher
from fhir_gateway.search.registry import default_registry
from fhir_gateway.storage.engine import make_engine
from fhir_gateway.storage.index_writer import IndexWriter
from fhir_gateway.storage.migrate import upgrade
from fhir_gateway.storage.repository import Repository


def write_kek(path: Path, key: bytes | None = None) -> Path:
    path.write_bytes(base64.b64encode(key if key is not None else os.urandom(32)))
    path.chmod(0o600)
    return path


def run(args: list[str], env: dict[str, str]) -> Result:
    clean = {k: None for k in os.environ if k.startswith("TELEHUB_")}
    return CliRunner().invoke(keys, args, env={**clean, **env}, catch_exceptions=False)


def seed(database_url: str, kek: Path, n: int) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    keyring = KeyRing(engine, FileKms.from_file(kek))
    keyring.ensure()  # at start-up, before any write transaction (as the server does)
    repo = Repository(engine, IndexWriter(IndexExtractor(default_registry()), PlainIndexHasher()),
                      EnvelopeCodec(keyring))
    with repo.transaction(write=True) as conn:
        for i in range(n):
            repo.create(conn, {"resourceType": "Patient", "id": f"p{i}", "gender": "unknown"}, f"p{i}")
    with repo.transaction() as conn:
        for i in range(n):
            assert repo.read(conn, "Patient", f"p{i}") is not None
    engine.dispose()


def status_json(env: dict[str, str]) -> dict[str, Any]:
    result = run(["status", "--json"], env)
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = orjson.loads(result.stdout)
    return out


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a dev KEK, if any were generated, lands here and not in the repository


def test_help_on_every_command() -> None:
    for args in ([], ["rotate"], ["reencrypt"], ["status"], ["rewrap"]):
        result = CliRunner().invoke(keys, [*args, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output
    assert "--reencrypt / --no-reencrypt" in CliRunner().invoke(keys, ["rotate", "--help"]).output
    assert "--new-kek-file" in CliRunner().invoke(keys, ["rewrap", "--help"]).output


def test_rotate_reencrypt_status_rewrap(database_url: str, tmp_path: Path) -> None:
    kek = write_kek(tmp_path / "kek.key")
    env = {"TELEHUB_DATABASE_URL": database_url, "TELEHUB_KEK_FILE": str(kek), "TELEHUB_ENV": "test"}
    seed(database_url, kek, 12)

    st = status_json(env)
    v1 = st["active_version"]
    assert st["tables"]["resource"]["by_version"] == {str(v1): 12}
    assert {k["purpose"] for k in st["keys"]} == {"body", "blind-index"}
    text = run(["status"], env)
    assert text.exit_code == 0 and f"resource: key {v1}: 12" in text.output

    result = run(["rotate", "--no-progress", "--batch-size", "5"], env)
    assert result.exit_code == 0, result.output
    st = status_json(env)
    v2 = st["active_version"]
    assert v2 > v1 and f"data key {v2} is now active" in result.output and "re-encrypted 24 rows" in result.output
    assert st["tables"]["resource"]["by_version"] == {str(v2): 12}
    assert st["tables"]["resource_version"]["by_version"] == {str(v2): 12}

    result = run(["rotate", "--no-reencrypt"], env)
    assert result.exit_code == 0, result.output
    v3 = status_json(env)["active_version"]
    assert "24 rows are not under the active key" in run(["status"], env).output
    result = run(["reencrypt", "--no-progress"], env)
    assert result.exit_code == 0 and "re-encrypted 24 rows" in result.output
    assert status_json(env)["tables"]["resource"]["by_version"] == {str(v3): 12}

    new_kek = write_kek(tmp_path / "new.key")
    result = run(["rewrap", "--new-kek-file", str(new_kek)], env)
    assert result.exit_code == 0, result.output
    assert f"re-wrapped 4 data keys under KEK {FileKms.from_file(new_kek).key_id}" in result.output
    assert {k["kek_id"] for k in status_json(env)["keys"]} == {FileKms.from_file(new_kek).key_id}

    stale = run(["rotate", "--no-progress"], env)  # still pointing at the old KEK
    assert stale.exit_code == 1 and "rewrap" in stale.output and "Traceback" not in stale.output
    env["TELEHUB_KEK_FILE"] = str(new_kek)
    assert run(["rotate", "--no-progress"], env).exit_code == 0
    assert status_json(env)["tables"]["resource"]["by_version"] == {str(v3 + 1): 12}


def test_rewrap_to_the_same_kek_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    kek = write_kek(tmp_path / "kek.key")
    env = {"TELEHUB_DATABASE_URL": sqlite_url, "TELEHUB_KEK_FILE": str(kek), "TELEHUB_ENV": "test"}
    seed(sqlite_url, kek, 1)
    result = run(["rewrap", "--new-kek-file", str(kek)], env)
    assert result.exit_code == 1 and "the new KEK is the KEK in use" in result.output


def test_prod_without_kek_file_refuses(sqlite_url: str, tmp_path: Path) -> None:
    env = {"TELEHUB_DATABASE_URL": sqlite_url, "TELEHUB_ENV": "prod", "TELEHUB_AUTH": "smart"}
    result = run(["rotate", "--no-progress"], env)
    assert result.exit_code == 1
    assert "TELEHUB_KEK_FILE is required" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "var" / "kek.key").exists()


def test_wrong_length_kek_file_is_reported_without_its_content(sqlite_url: str, tmp_path: Path) -> None:
    key = os.urandom(24)
    kek = write_kek(tmp_path / "short.key", key)
    env = {"TELEHUB_DATABASE_URL": sqlite_url, "TELEHUB_KEK_FILE": str(kek), "TELEHUB_ENV": "test"}
    result = run(["rotate", "--no-progress"], env)
    assert result.exit_code == 1
    assert str(kek) in result.output and "24 bytes" in result.output
    assert base64.b64encode(key).decode() not in result.output
