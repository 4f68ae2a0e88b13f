"""The key-encryption key: FileKms wrapping, KEK file validation, and the start-up rules of load_kms."""
from __future__ import annotations

import base64
import logging
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fhir_gateway.crypto.kms import FileKms, KekFileError, Kms, KmsError, generate_kek_file, load_kms
from fhir_gateway.settings import Settings, SettingsError


def kek_file(path: Path, key: bytes | None = None) -> Path:
    path.write_bytes(base64.b64encode(key if key is not None else os.urandom(32)) + b"\n")
    path.chmod(0o600)
    return path


def test_wrap_round_trip_binds_kek_and_context(tmp_path: Path) -> None:
    kms = FileKms.from_file(kek_file(tmp_path / "kek"))
    other = FileKms.from_file(kek_file(tmp_path / "other"))
    assert isinstance(kms, Kms)
    dek = os.urandom(32)
    wrapped = kms.wrap(dek, context=b"body/1")
    assert dek not in wrapped
    assert kms.wrap(dek, context=b"body/1") != wrapped  # fresh nonce every time
    assert kms.unwrap(wrapped, context=b"body/1") == dek
    with pytest.raises(KmsError):
        kms.unwrap(wrapped, context=b"body/2")  # moved to another key row
    with pytest.raises(KmsError):
        other.unwrap(wrapped, context=b"body/1")  # another KEK
    tampered = bytearray(wrapped)
    tampered[-1] ^= 1
    with pytest.raises(KmsError):
        kms.unwrap(bytes(tampered), context=b"body/1")
    with pytest.raises(KmsError):
        kms.unwrap(b"\x02" + wrapped[1:], context=b"body/1")


def test_key_id_is_stable_and_reveals_nothing(tmp_path: Path) -> None:
    key = os.urandom(32)
    a = FileKms.from_file(kek_file(tmp_path / "a", key))
    b = FileKms.from_file(kek_file(tmp_path / "b", key))
    c = FileKms.from_file(kek_file(tmp_path / "c"))
    assert a.key_id == b.key_id != c.key_id
    assert a.key_id.startswith("file:")
    assert key.hex() not in a.key_id and key.hex() not in repr(a)
    assert base64.b64encode(key).decode() not in repr(a)


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_wrong_length_kek_file_names_the_file_not_the_key(tmp_path: Path, length: int) -> None:
    key = os.urandom(length)
    path = kek_file(tmp_path / "kek.key", key)
    with pytest.raises(KekFileError) as info:
        FileKms.from_file(path)
    message = str(info.value)
    assert str(path) in message
    assert str(length) in message and "32" in message
    encoded = base64.b64encode(key).decode()
    if encoded:
        assert encoded not in message and encoded not in repr(info.value)
    assert info.value.__cause__ is None  # no chained exception that could carry the content
    assert info.value.__context__ is None or info.value.__suppress_context__
    assert isinstance(info.value, SettingsError)  # a start-up error, like every other bad setting


def test_non_base64_kek_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = tmp_path / "kek.key"
    secret = "not-base64!my-secret-passphrase"
    path.write_text(secret)
    with pytest.raises(KekFileError) as info:
        FileKms.from_file(path)
    assert str(path) in str(info.value)
    assert "secret" not in str(info.value) and "passphrase" not in str(info.value)


def test_missing_kek_file(tmp_path: Path) -> None:
    with pytest.raises(KekFileError, match="does not exist"):
        FileKms.from_file(tmp_path / "nope")


def test_group_readable_kek_file_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = kek_file(tmp_path / "kek.key")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="telehub.crypto"):
        FileKms.from_file(path)
    assert "chmod 600" in caplog.text


def test_prod_without_kek_file_is_a_start_up_error(tmp_path: Path) -> None:
    dev_path = tmp_path / "var" / "kek.key"
    with pytest.raises(KekFileError, match="TELEHUB_KEK_FILE is required"):
        load_kms(Settings(env="prod", auth="smart"), dev_kek_path=dev_path)
    assert not dev_path.exists()  # production never falls back to a generated key


def test_prod_with_kek_file(tmp_path: Path) -> None:
    path = kek_file(tmp_path / "kek.key")
    kms = load_kms(Settings(env="prod", auth="smart", kek_file=str(path)))
    assert kms.key_id == FileKms.from_file(path).key_id


@pytest.mark.parametrize("env", ["dev", "test"])
def test_dev_without_kek_file_generates_one_with_a_warning(tmp_path: Path, env: str,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "var" / "kek.key"
    with caplog.at_level(logging.WARNING, logger="telehub.crypto"):
        first = load_kms(Settings(env=env), dev_kek_path=path)
    assert "generated a development key-encryption key" in caplog.text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(base64.b64decode(path.read_bytes())) == 32
    assert path.read_bytes().strip().decode() not in caplog.text
    second = load_kms(Settings(env=env), dev_kek_path=path)
    assert second.key_id == first.key_id  # the generated key is kept, not regenerated
    assert [p.name for p in path.parent.iterdir()] == ["kek.key"]  # no temporary files left behind


def test_concurrent_generation_yields_one_key(tmp_path: Path) -> None:
    path = tmp_path / "kek.key"
    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(lambda _: load_kms(Settings(env="dev"), dev_kek_path=path).key_id, range(16)))
    assert len(ids) == 1


def test_generate_refuses_to_overwrite(tmp_path: Path) -> None:
    path = kek_file(tmp_path / "kek.key")
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        generate_kek_file(path)
    assert path.read_bytes() == before
