"""Key ring, rotation, online re-encryption, re-wrapping and status, on SQLite and PostgreSQL."""
from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, inspect, select, update

from fhir_gateway.crypto.envelope import EnvelopeCodec, key_version
from fhir_gateway.crypto.keyring import KeyRing, KeyRingError
from fhir_gateway.crypto.kms import FileKms
from fhir_gateway.crypto.rotation import reencrypt, rewrap, rotate, status
from fhir_gateway.crypto.tables import PURPOSE_BLIND_INDEX, PURPOSE_BODY, data_key
from fhir_gateway.search.extract import IndexExtractor
from fhir_gateway.search.hashing import PlainIndexHasher
from fhir_gateway.search.registry import default_registry
from fhir_gateway.storage.codec import CompressingCodec, associated_data
from fhir_gateway.storage.engine import make_engine
from fhir_gateway.storage.index_writer import IndexWriter
from fhir_gateway.storage.migrate import downgrade, upgrade
from fhir_gateway.storage.repository import Repository
from fhir_gateway.storage.tables import resource


def new_kms(path: Path) -> FileKms:
    path.write_bytes(base64.b64encode(os.urandom(32)))
    return FileKms.from_file(path)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def kms(tmp_path: Path) -> FileKms:
    return new_kms(tmp_path / "kek.key")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def keyring(engine: Engine, kms: FileKms) -> KeyRing:
    ring = KeyRing(engine, kms)
    ring.ensure()
    return ring


@pytest.fixture(scope="module")
def writer() -> IndexWriter:
    return IndexWriter(IndexExtractor(default_registry()), PlainIndexHasher())


def repo_for(engine: Engine, keyring: KeyRing, writer: IndexWriter) -> Repository:
    return Repository(engine, writer, EnvelopeCodec(keyring))


def obs(i: int) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": f"o{i}", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "valueQuantity": {"value": 60 + i, "unit": "/min"}}


def populate(repo: Repository, n: int, *, updates: int = 0) -> None:
    with repo.transaction(write=True) as conn:
        for i in range(n):
            repo.create(conn, obs(i), f"o{i}")
        for i in range(updates):
            repo.update(conn, {**obs(i), "status": "amended"}, f"o{i}")


def read_all(repo: Repository, n: int) -> dict[str, Any]:
    with repo.transaction() as conn:
        out: dict[str, Any] = {}
        for i in range(n):
            stored = repo.read(conn, "Observation", f"o{i}")
            assert stored is not None and stored.resource is not None
            out[f"o{i}"] = stored.resource
            for v in range(1, stored.version + 1):
                assert repo.vread(conn, "Observation", f"o{i}", v) is not None
        return out


def versions_in_use(engine: Engine) -> dict[str, dict[int, int]]:
    return {name: t.by_version for name, t in status(engine).tables.items()}


# ------------------------------------------------------------------ schema and key ring

def test_migration_creates_and_drops_data_key(engine: Engine) -> None:
    assert "data_key" in inspect(engine).get_table_names()
    downgrade(engine, "0001")
    assert "data_key" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert "data_key" in inspect(engine).get_table_names()


def test_ensure_creates_body_and_blind_index_keys_once(engine: Engine, kms: FileKms) -> None:
    rings = [KeyRing(engine, kms) for _ in range(4)]  # four workers starting at once
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda r: r.ensure(), rings))
    keys = status(engine).keys
    assert sorted((k.purpose, k.status) for k in keys) == [(PURPOSE_BLIND_INDEX, "active"), (PURPOSE_BODY, "active")]
    assert all(k.kek_id == kms.key_id for k in keys)
    assert len({r.active_version() for r in rings}) == 1
    blind = {r.blind_index_key() for r in rings}
    assert len(blind) == 1 and len(next(iter(blind))) == 32
    with engine.connect() as conn:  # wrapped, never stored in plaintext
        wrapped = conn.execute(select(data_key.c.wrapped_key)).scalars().all()
    assert all(next(iter(blind)) not in bytes(w) for w in wrapped)


def test_keys_are_created_lazily_on_first_use(engine: Engine, kms: FileKms) -> None:
    ring = KeyRing(engine, kms)
    blob = EnvelopeCodec(ring).encode(obs(1), b"aad")
    assert key_version(blob) == ring.active_version()


def test_wrong_kek_refuses_to_start_without_leaking_keys(engine: Engine, keyring: KeyRing, tmp_path: Path) -> None:
    other = new_kms(tmp_path / "other.key")
    with pytest.raises(KeyRingError) as info:
        KeyRing(engine, other).ensure()
    message = str(info.value)
    assert keyring.kms.key_id in message and other.key_id in message and "rewrap" in message
    assert keyring.blind_index_key().hex() not in message


def test_tampered_data_key_row_refuses_to_start(engine: Engine, keyring: KeyRing, kms: FileKms) -> None:
    with engine.begin() as conn:  # move the body key's wrapping into the blind-index key's row
        rows = {r.purpose: r for r in conn.execute(select(data_key))}
        conn.execute(update(data_key).where(data_key.c.purpose == PURPOSE_BLIND_INDEX)
                     .values(wrapped_key=rows[PURPOSE_BODY].wrapped_key))
    with pytest.raises(KeyRingError, match="integrity check"):
        KeyRing(engine, kms).ensure()


def test_other_processes_pick_up_a_rotation(engine: Engine, kms: FileKms, writer: IndexWriter) -> None:
    clock = FakeClock()
    admin = KeyRing(engine, kms)
    worker = KeyRing(engine, kms, refresh_interval=30.0, clock=clock)
    worker.ensure()
    old = worker.active_version()
    new = rotate(engine, admin)
    assert admin.active_version() == new
    # the worker reads a body under the new key at once (unknown version → reload) …
    blob = EnvelopeCodec(admin).encode(obs(1), b"row")
    assert EnvelopeCodec(worker).decode(blob, b"row") == obs(1)
    # … and, independently of that, switches its writes within the refresh interval
    worker2 = KeyRing(engine, kms, refresh_interval=30.0, clock=clock)
    worker2.ensure()
    newer = rotate(engine, admin)
    assert worker2.active_version() == new
    clock.now += 31
    assert worker2.active_version() == newer
    assert old < new < newer


def test_refresh_failure_keeps_serving_from_cache(engine: Engine, kms: FileKms,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    ring = KeyRing(engine, kms, clock=clock, refresh_interval=30.0, min_refresh_interval=1.0)
    ring.ensure()
    version = ring.active_version()
    codec = EnvelopeCodec(ring)
    blob = codec.encode(obs(1), b"row")
    attempts: list[bool] = []

    def failing(*, strict: bool) -> Any:
        attempts.append(strict)
        raise RuntimeError("database unavailable")

    monkeypatch.setattr(ring, "_load", failing)
    clock.now += 60
    assert ring.active_version() == version  # still encrypting under the cached key
    assert codec.decode(blob, b"row") == obs(1)
    assert ring.active_version() == version
    assert len(attempts) == 1  # not retried on every call …
    clock.now += 1.5
    ring.active_version()
    assert len(attempts) == 2  # … but soon


# ------------------------------------------------------------------ rotation and re-encryption

def test_rotation_keeps_old_rows_readable_and_writes_under_the_new_key(engine: Engine, keyring: KeyRing,
                                                                       writer: IndexWriter) -> None:
    repo = repo_for(engine, keyring, writer)
    populate(repo, 10, updates=3)
    before = read_all(repo, 10)
    v1 = keyring.active_version()
    assert versions_in_use(engine) == {"resource": {v1: 10}, "resource_version": {v1: 13}}

    v2 = rotate(engine, keyring)
    assert v2 > v1
    assert read_all(repo, 10) == before  # old rows readable under the retired key
    with repo.transaction(write=True) as conn:
        repo.update(conn, {**obs(0), "status": "corrected"}, "o0")
        repo.create(conn, obs(100), "o100")
    with engine.connect() as conn:
        blob = conn.execute(select(resource.c.body).where(resource.c.fid == "o100")).scalar_one()
    assert key_version(bytes(blob)) == v2
    assert versions_in_use(engine) == {"resource": {v1: 9, v2: 2}, "resource_version": {v1: 13, v2: 2}}
    keys = {k.version: k.status for k in status(engine).keys if k.purpose == PURPOSE_BODY}
    assert keys == {v1: "retired", v2: "active"}

    seen: list[int] = []
    report = reencrypt(engine, keyring, batch_size=4, progress=seen.append)
    assert report.reencrypted == 9 + 13 and report.remaining == 0 and not report.failed
    assert sum(seen) == 22 and max(seen) <= 4
    assert versions_in_use(engine) == {"resource": {v2: 11}, "resource_version": {v2: 15}}
    assert status(engine).pending() == 0
    after = read_all(repo, 10)
    assert after["o0"]["status"] == "corrected"
    assert {k: v for k, v in after.items() if k != "o0"} == {k: v for k, v in before.items() if k != "o0"}
    # running it again finds nothing to do
    assert reencrypt(engine, keyring).reencrypted == 0


def test_status_counts_deleted_and_unencrypted_rows(engine: Engine, keyring: KeyRing, writer: IndexWriter) -> None:
    plain_repo = Repository(engine, writer, CompressingCodec())
    populate(plain_repo, 3)  # written before encryption was turned on
    repo = repo_for(engine, keyring, writer)
    with repo.transaction(write=True) as conn:
        for body in (obs(3), obs(4)):
            repo.create(conn, body, body["id"])
        repo.delete(conn, "Observation", "o3")
    st = status(engine)
    v = keyring.active_version()
    assert st.tables["resource"].by_version == {v: 1}
    assert st.tables["resource"].unencrypted == 3 and st.tables["resource"].empty == 1
    assert st.tables["resource_version"].by_version == {v: 2}
    assert st.tables["resource_version"].empty == 1 and st.tables["resource_version"].total == 6
    # plaintext rows are only adopted on request
    assert reencrypt(engine, keyring).adopted == 0
    report = reencrypt(engine, keyring, adopt_plaintext=True)
    assert report.adopted == 6 and report.remaining == 0
    assert status(engine).tables["resource"].unencrypted == 0
    adopted = read_all(repo, 3)["o1"]
    assert {k: v for k, v in adopted.items() if k != "meta"} == obs(1)


def test_reencrypt_is_resumable(engine: Engine, keyring: KeyRing, writer: IndexWriter) -> None:
    repo = repo_for(engine, keyring, writer)
    populate(repo, 30, updates=5)
    before = read_all(repo, 30)

    class Interrupted(Exception):
        pass

    batches: list[int] = []

    def stop_after_two(n: int) -> None:
        batches.append(n)
        if len(batches) == 2:
            raise Interrupted  # the operator hit ^C, or the process died

    old = keyring.active_version()
    new = rotate(engine, keyring)
    with pytest.raises(Interrupted):
        reencrypt(engine, keyring, batch_size=7, progress=stop_after_two)
    assert status(engine).tables["resource"].by_version == {old: 16, new: 14}
    assert read_all(repo, 30) == before  # half-way is a consistent state
    report = reencrypt(engine, keyring, batch_size=7)
    assert report.reencrypted == 16 + 35 and report.remaining == 0
    assert read_all(repo, 30) == before


def test_reencrypt_never_overwrites_a_concurrent_update(engine: Engine, kms: FileKms, keyring: KeyRing,
                                                        writer: IndexWriter) -> None:
    clock = FakeClock()
    server_ring = KeyRing(engine, kms, clock=clock)  # a worker that has not seen the rotation yet
    server = repo_for(engine, server_ring, writer)
    populate(server, 6)
    old = server_ring.active_version()
    new = rotate(engine, keyring)

    class RacingCodec(EnvelopeCodec):
        """Between re-encryption reading o2 and writing it back, a request updates o2."""

        raced = False

        def reseal(self, blob: bytes, aad: bytes) -> bytes | None:
            if aad == associated_data("Observation", "o2", 1) and not self.raced:
                RacingCodec.raced = True
                with server.transaction(write=True) as conn:
                    server.update(conn, {**obs(2), "status": "entered-in-error"}, "o2")
            return super().reseal(blob, aad)

    report = reencrypt(engine, keyring, batch_size=100, codec=RacingCodec(keyring))
    assert RacingCodec.raced
    assert report.changed_meanwhile == 1  # the compare-and-swap lost, so the update survived …
    with server.transaction() as conn:
        current = server.read(conn, "Observation", "o2")
    assert current is not None and current.resource is not None
    assert current.version == 2 and current.resource["status"] == "entered-in-error"
    # … and the rows that the stale worker wrote under the old key were caught by a further pass
    assert report.remaining == 0
    assert versions_in_use(engine) == {"resource": {new: 6}, "resource_version": {new: 7}}
    assert old != new


def test_reencrypt_reports_tampered_rows_and_goes_on(engine: Engine, keyring: KeyRing, writer: IndexWriter) -> None:
    repo = repo_for(engine, keyring, writer)
    populate(repo, 5)
    rotate(engine, keyring)
    with engine.begin() as conn:
        swapped = conn.execute(select(resource.c.body).where(resource.c.fid == "o1")).scalar_one()
        conn.execute(update(resource).where(resource.c.fid == "o2").values(body=swapped))
        pk = conn.execute(select(resource.c.pk).where(resource.c.fid == "o2")).scalar_one()
    report = reencrypt(engine, keyring)
    assert report.failed == [("resource", pk)]
    assert report.reencrypted == 9 and report.remaining == 1


def test_rotation_serialises_concurrent_rotations(engine: Engine, kms: FileKms, keyring: KeyRing) -> None:
    rings = [KeyRing(engine, kms) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        versions = list(pool.map(lambda r: rotate(engine, r), rings))
    assert len(set(versions)) == 4
    with engine.connect() as conn:
        active = conn.execute(select(func.count()).select_from(data_key).where(
            data_key.c.purpose == PURPOSE_BODY, data_key.c.status == "active")).scalar_one()
    assert active == 1


# ------------------------------------------------------------------ re-wrapping under a new KEK

def test_rewrap_moves_every_key_to_the_new_kek(engine: Engine, kms: FileKms, keyring: KeyRing,
                                               writer: IndexWriter, tmp_path: Path) -> None:
    repo = repo_for(engine, keyring, writer)
    populate(repo, 4)
    rotate(engine, keyring)
    with repo.transaction(write=True) as conn:
        repo.create(conn, obs(50), "o50")
    before = read_all(repo, 4)
    blind = keyring.blind_index_key()
    new = new_kms(tmp_path / "new.key")
    stray = new_kms(tmp_path / "stray.key")

    with pytest.raises(KeyRingError):  # the "old" KEK given is not the one in use: nothing changes
        rewrap(engine, stray, new)
    assert {k.kek_id for k in status(engine).keys} == {kms.key_id}

    ticks: list[int] = []
    assert rewrap(engine, kms, new, ticks.append) == 3
    assert len(ticks) == 3
    assert {k.kek_id for k in status(engine).keys} == {new.key_id}
    assert rewrap(engine, kms, new) == 0  # running it again is harmless

    with pytest.raises(KeyRingError, match="rewrap"):
        KeyRing(engine, kms).ensure()  # the old KEK no longer opens anything
    fresh = KeyRing(engine, new)
    fresh.ensure()
    assert fresh.blind_index_key() == blind
    assert read_all(repo_for(engine, fresh, writer), 4) == before
