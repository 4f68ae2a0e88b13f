"""Key rotation, online re-encryption, KEK re-wrapping and per-key-version status.

* :func:`rotate` retires the active body key and makes a new one active. Old keys
  stay, so everything stays readable; new writes use the new key (other processes
  switch within their key ring's refresh interval).
* :func:`reencrypt` moves every ``resource`` and ``resource_version`` body that is
  not under the active key onto it, in batches, each its own short transaction, while
  the server keeps serving. Rows are selected by the key version in their header (in
  SQL, no decryption), so running it again resumes where it stopped. Each row is
  written with compare-and-swap on (pk, old blob): a row that a request changed
  meanwhile is left as the request wrote it. The plaintext is never re-serialised:
  the decrypted payload is sealed again under the new key.
* :func:`rewrap` re-wraps every data key under a new KEK in one transaction (the data
  is untouched); afterwards every server must use the new KEK file.
* :func:`status` counts rows per key version, without decrypting anything.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    LargeBinary,
    Table,
    and_,
    func,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.exc import OperationalError

from fhir_gateway.crypto.envelope import PREFIX, EnvelopeCodec, version_bytes
from fhir_gateway.crypto.keyring import (
    DataKey,
    KeyRing,
    KeyRingError,
    create_data_key,
    key_context,
    list_keys,
    lock_data_keys,
    unwrap_error,
    write_transaction,
)
from fhir_gateway.crypto.kms import Kms, KmsError
from fhir_gateway.crypto.tables import PURPOSE_BODY, STATUS_ACTIVE, STATUS_RETIRED, data_key
from fhir_gateway.errors import DataIntegrityError
from fhir_gateway.storage.codec import CompressingCodec, associated_data
from fhir_gateway.storage.tables import resource, resource_version

log = logging.getLogger("telehub.crypto")

BODY_TABLES: tuple[Table, ...] = (resource, resource_version)
DEFAULT_BATCH_SIZE = 500
_RETRIES = 5


# -- rotate ---------------------------------------------------------------------------------------
def rotate(engine: Engine, keyring: KeyRing) -> int:
    """Make a new body data key active (the previous one is retired, not deleted); returns its version.

    Refuses (:class:`KeyRingError`) when the existing keys do not unwrap under the key ring's KEK,
    so one database never mixes KEKs.
    """
    keyring.ensure()
    with write_transaction(engine) as conn:
        lock_data_keys(conn)
        conn.execute(update(data_key).where(data_key.c.purpose == PURPOSE_BODY,
                                            data_key.c.status == STATUS_ACTIVE).values(status=STATUS_RETIRED))
        version = create_data_key(conn, keyring.kms, PURPOSE_BODY)
    keyring.refresh(strict=True)
    log.info("data key %d is now the active body key", version)
    return version


# -- status ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TableStatus:
    by_version: dict[int, int]  # data-key version → rows
    unencrypted: int  # bodies that are not envelopes (written before encryption was on)
    empty: int  # deletion markers: no body

    @property
    def total(self) -> int:
        return sum(self.by_version.values()) + self.unencrypted + self.empty


@dataclass(frozen=True)
class KeyStatus:
    keys: list[DataKey]
    tables: dict[str, TableStatus]  # "resource", "resource_version"

    @property
    def active_version(self) -> int | None:
        return next((k.version for k in self.keys if k.purpose == PURPOSE_BODY and k.status == STATUS_ACTIVE),
                    None)

    def pending(self, *, include_unencrypted: bool = False) -> int:
        """Bodies not under the active key (what :func:`reencrypt` has left to do)."""
        active = self.active_version
        n = 0
        for t in self.tables.values():
            n += sum(c for v, c in t.by_version.items() if v != active)
            if include_unencrypted:
                n += t.unencrypted
        return n


def _substr(table: Table, start: int, length: int) -> ColumnElement[bytes]:
    # literal_column: the same SQL text in SELECT and GROUP BY (PostgreSQL cannot match two bound parameters)
    return func.substr(table.c.body, literal_column(str(start)), literal_column(str(length)), type_=LargeBinary)


def status(engine: Engine) -> KeyStatus:
    """Data keys, and rows per data-key version of ``resource`` and ``resource_version``."""
    tables: dict[str, TableStatus] = {}
    with engine.connect() as conn:
        keys = list_keys(conn)
        for table in BODY_TABLES:
            prefix, kv = _substr(table, 1, 3), _substr(table, 5, 4)
            by_version: dict[int, int] = {}
            unencrypted = 0
            rows = conn.execute(select(prefix.label("prefix"), kv.label("kv"), func.count().label("n"))
                                .where(table.c.body.is_not(None)).group_by(prefix, kv)).all()
            for row in rows:
                p, v = bytes(row.prefix or b""), bytes(row.kv or b"")
                if p == PREFIX and len(v) == 4:
                    version = int.from_bytes(v, "big")
                    by_version[version] = by_version.get(version, 0) + int(row.n)
                else:
                    unencrypted += int(row.n)
            empty = int(conn.execute(select(func.count()).select_from(table)
                                     .where(table.c.body.is_(None))).scalar_one())
            tables[str(table.name)] = TableStatus(dict(sorted(by_version.items())), unencrypted, empty)
        conn.rollback()
    return KeyStatus(keys, tables)


# -- re-encrypt -----------------------------------------------------------------------------------
@dataclass
class ReencryptReport:
    active_version: int = 0
    reencrypted: int = 0  # rows moved to the active key
    adopted: int = 0  # unencrypted rows encrypted (adopt_plaintext)
    changed_meanwhile: int = 0  # compare-and-swap lost: a request rewrote the row first; left as it wrote it
    failed: list[tuple[str, int]] = field(default_factory=list)  # (table, pk) that failed the integrity check
    remaining: int = 0  # rows still not under the active key when it finished


def _needs_work(table: Table, active: int, adopt_plaintext: bool) -> ColumnElement[bool]:
    is_env = _substr(table, 1, 3) == literal(PREFIX, LargeBinary)
    other_key = _substr(table, 5, 4) != literal(version_bytes(active), LargeBinary)
    cond = and_(is_env, other_key)
    if adopt_plaintext:
        cond = or_(cond, ~is_env)
    return and_(table.c.body.is_not(None), cond)


def reencrypt(engine: Engine, keyring: KeyRing, batch_size: int = DEFAULT_BATCH_SIZE,
              progress: Callable[[int], object] | None = None, *, adopt_plaintext: bool = False,
              max_passes: int = 3, codec: EnvelopeCodec | None = None) -> ReencryptReport:
    """Re-encrypt every body not under the active key, ``batch_size`` rows per transaction.

    Online (short transactions, compare-and-swap per row), resumable (run it again: rows
    already done are not selected), lossless (a row changed meanwhile is never overwritten).
    ``progress(n)`` is called after each batch with the number of rows examined.
    Rows that a worker still on the previous key writes during the run are caught by a
    further pass (up to ``max_passes``); ``remaining`` says what is left.
    ``adopt_plaintext`` also encrypts bodies written before encryption was turned on
    (plain or zlib JSON); only use it on a database whose unencrypted rows you trust.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    codec = codec or EnvelopeCodec(keyring)
    legacy = CompressingCodec()
    report = ReencryptReport()
    failed: set[tuple[str, int]] = set()
    for _ in range(max_passes):
        moved = 0
        for table in BODY_TABLES:
            last_pk = 0
            while True:
                active = keyring.active_version()
                with engine.connect() as conn:
                    rows = conn.execute(
                        select(table.c.pk, table.c.rtype, table.c.fid, table.c.version, table.c.body)
                        .where(table.c.pk > last_pk, _needs_work(table, active, adopt_plaintext))
                        .order_by(table.c.pk).limit(batch_size)).all()
                    conn.rollback()
                if not rows:
                    break
                last_pk = int(rows[-1].pk)
                updates: list[tuple[int, bytes, bytes, bool]] = []  # (pk, old, new, adopted)
                for row in rows:
                    old = bytes(row.body)
                    aad = associated_data(row.rtype, row.fid, row.version)
                    try:
                        if old[:3] == PREFIX:
                            new = codec.reseal(old, aad)
                            if new is not None:
                                updates.append((row.pk, old, new, False))
                        elif adopt_plaintext:
                            updates.append((row.pk, old, codec.encode(_legacy_decode(legacy, old, aad), aad), True))
                    except DataIntegrityError:
                        failed.add((str(table.name), int(row.pk)))
                done, lost, adopted = _swap(engine, table, updates)
                report.reencrypted += done - adopted
                report.adopted += adopted
                report.changed_meanwhile += lost
                moved += done
                if progress is not None:
                    progress(len(rows))
        if moved == 0:
            break
    report.active_version = keyring.active_version()
    report.failed = sorted(failed)
    report.remaining = status(engine).pending(include_unencrypted=adopt_plaintext)
    return report


def _legacy_decode(codec: CompressingCodec, blob: bytes, aad: bytes) -> dict[str, Any]:
    try:
        return codec.decode(blob, aad)
    except Exception:  # not JSON, not zlib: garbage
        raise DataIntegrityError() from None


def _swap(engine: Engine, table: Table, updates: list[tuple[int, bytes, bytes, bool]]) -> tuple[int, int, int]:
    """Compare-and-swap each row in one transaction: (swapped, lost, swapped that were adopted)."""
    if not updates:
        return 0, 0, 0
    stmt = update(table)
    for attempt in range(_RETRIES):
        done = lost = adopted = 0
        try:
            with write_transaction(engine) as conn:
                for pk, old, new, was_plain in updates:
                    res = conn.execute(stmt.where(table.c.pk == pk, table.c.body == old).values(body=new))
                    if res.rowcount == 1:
                        done += 1
                        adopted += was_plain
                    else:
                        lost += 1
            return done, lost, adopted
        except OperationalError:  # deadlock with a request's transaction, or a lock timeout: retry the batch
            if attempt == _RETRIES - 1:
                raise
            log.info("re-encryption batch on %s hit a lock conflict; retrying", table.name)
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


# -- re-wrap --------------------------------------------------------------------------------------
def rewrap(engine: Engine, old_kms: Kms, new_kms: Kms, progress: Callable[[int], object] | None = None) -> int:
    """Re-wrap every data key under ``new_kms`` (one transaction); returns how many were re-wrapped.

    Keys already under ``new_kms`` are left alone, so running it again is harmless.
    :class:`KeyRingError` if a key is under neither KEK or fails its integrity check.
    """
    n = 0
    with write_transaction(engine) as conn:
        lock_data_keys(conn)
        rows = conn.execute(select(data_key).order_by(data_key.c.version)).all()
        for row in rows:
            if progress is not None:
                progress(1)
            if row.kek_id == new_kms.key_id:
                continue
            context = key_context(row.purpose, row.version)
            try:
                key = old_kms.unwrap(row.wrapped_key, context=context)
            except KmsError:
                raise unwrap_error(old_kms, row.version, row.purpose, row.kek_id) from None
            res = conn.execute(update(data_key).where(data_key.c.version == row.version,
                                                      data_key.c.wrapped_key == row.wrapped_key)
                               .values(wrapped_key=new_kms.wrap(key, context=context), kek_id=new_kms.key_id))
            if res.rowcount != 1:  # pragma: no cover - we hold the data-key lock
                raise KeyRingError(f"data key {row.version} changed during re-wrapping; run it again")
            n += 1
        for row in conn.execute(select(data_key)).all():  # prove the new wrapping before committing
            try:
                new_kms.unwrap(row.wrapped_key, context=key_context(row.purpose, row.version))
            except KmsError:
                raise KeyRingError(f"data key {row.version} does not unwrap under the new KEK; "
                                   "nothing was changed") from None
    log.info("re-wrapped %d data keys under KEK %s", n, new_kms.key_id)
    return n
