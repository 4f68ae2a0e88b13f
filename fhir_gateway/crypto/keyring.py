"""The key ring: the data keys of ``data_key``, unwrapped once per process and cached.

:class:`KeyRing` is shared by every thread of a worker. It holds an immutable
snapshot (version → AES-GCM cipher, the active body key version, the blind-index
key) that is swapped whole, so readers never lock. It refreshes

* every ``refresh_interval`` seconds (30 by default), from whichever call comes
  first after the interval, so a worker starts writing under a key that another
  process rotated in within that time (older keys stay readable meanwhile);
* when a body names a key version above any it has seen (a rotation it has not
  seen yet). After a failed refresh it retries after ``min_refresh_interval``.

A key version's material never changes (re-wrapping under a new KEK changes only
its wrapping), so a refresh unwraps only versions it has not seen before.
:meth:`KeyRing.ensure` is the start-up check: it creates the first body key and the
blind-index key if the database has none, and refuses to start (:class:`KeyRingError`,
naming key versions and KEK ids, never key material) if any key does not unwrap
under the configured KEK.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, Engine, func, insert, select, text

from fhir_gateway.crypto.kms import KEY_BYTES, Kms, KmsError
from fhir_gateway.crypto.tables import (
    PURPOSE_BLIND_INDEX,
    PURPOSE_BODY,
    STATUS_ACTIVE,
    STATUS_RETIRED,
    data_key,
)

log = logging.getLogger("telehub.crypto")

_PG_LOCK_KEY = 0x7E1E_4B_0D  # advisory lock serialising data-key changes (creation, rotation, re-wrap)


class KeyRingError(Exception):
    """The data keys cannot be used with the configured KEK (operator-facing; never contains key material)."""


@dataclass(frozen=True)
class DataKey:
    """One ``data_key`` row, without its key."""

    version: int
    purpose: str
    status: str
    kek_id: str
    created: int


def key_context(purpose: str, version: int) -> bytes:
    """Authenticated context of a wrapped data key: a wrapped key moved to another row does not unwrap."""
    return f"telehub/data-key/{purpose}/{version}".encode()


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that may write: SQLite takes its write lock up front (BEGIN IMMEDIATE)."""
    with engine.connect() as conn:
        conn.info["telehub_write"] = True
        with conn.begin():
            yield conn


def lock_data_keys(conn: Connection) -> None:
    """Serialise data-key changes across processes (SQLite: BEGIN IMMEDIATE already did)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})


def list_keys(conn: Connection) -> list[DataKey]:
    rows = conn.execute(select(data_key.c.version, data_key.c.purpose, data_key.c.status, data_key.c.kek_id,
                               data_key.c.created).order_by(data_key.c.version)).all()
    return [DataKey(r.version, r.purpose, r.status, r.kek_id, r.created) for r in rows]


def create_data_key(conn: Connection, kms: Kms, purpose: str) -> int:
    """Generate, wrap and insert a new active key for ``purpose``; returns its version.

    Call under :func:`lock_data_keys`, after retiring the previous active key of ``purpose``.
    """
    version = int(conn.execute(select(func.coalesce(func.max(data_key.c.version), 0))).scalar_one()) + 1
    key = os.urandom(KEY_BYTES)
    conn.execute(insert(data_key).values(
        version=version, purpose=purpose, wrapped_key=kms.wrap(key, context=key_context(purpose, version)),
        kek_id=kms.key_id, created=time.time_ns() // 1000, status=STATUS_ACTIVE))
    return version


def _missing_purposes(conn: Connection) -> list[str]:
    active = set(conn.execute(select(data_key.c.purpose).where(data_key.c.status == STATUS_ACTIVE)).scalars())
    return [p for p in (PURPOSE_BODY, PURPOSE_BLIND_INDEX) if p not in active]


def unwrap_error(kms: Kms, version: int, purpose: str, kek_id: str) -> KeyRingError:
    if kek_id != kms.key_id:
        return KeyRingError(
            f"data key {version} ({purpose}) is wrapped under KEK {kek_id}, but the configured KEK is "
            f"{kms.key_id}: point TELEHUB_KEK_FILE at the KEK it was wrapped with, or re-wrap the keys "
            "with `telehub keys rewrap`")
    return KeyRingError(f"data key {version} ({purpose}) failed its integrity check under KEK {kek_id}: "
                        "its data_key row was altered")


@dataclass(frozen=True)
class _Snapshot:
    ciphers: dict[int, AESGCM]  # body keys by version
    active: int
    blind_index: bytes
    max_version: int  # highest version in data_key at load time (any purpose)
    loaded_at: float


class KeyRing:
    """Body keys by version and the blind-index key, loaded from ``data_key`` and cached. Thread-safe."""

    def __init__(self, engine: Engine, kms: Kms, *, refresh_interval: float = 30.0,
                 min_refresh_interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.kms = kms
        self.refresh_interval = refresh_interval
        self.min_refresh_interval = min_refresh_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._snap: _Snapshot | None = None

    # -- start-up -------------------------------------------------------------------------------
    def ensure(self) -> None:
        """Create the first body key and the blind-index key if missing; check every key unwraps.

        Raises :class:`KeyRingError` when a stored key does not unwrap under the configured KEK.
        """
        with self._lock:
            with self.engine.connect() as conn:
                missing = _missing_purposes(conn)
            if missing:
                with write_transaction(self.engine) as conn:
                    lock_data_keys(conn)
                    for purpose in _missing_purposes(conn):  # again, under the lock: another process may have
                        version = create_data_key(conn, self.kms, purpose)
                        log.info("created data key %d (%s) under KEK %s", version, purpose, self.kms.key_id)
            self._load(strict=True)

    # -- loading --------------------------------------------------------------------------------
    def refresh(self, *, strict: bool = False) -> None:
        """Reload ``data_key`` now. ``strict``: raise :class:`KeyRingError` if any key does not unwrap."""
        with self._lock:
            self._load(strict=strict)

    def _load(self, *, strict: bool) -> _Snapshot:
        """Read ``data_key`` and install a new snapshot (returned). Caller holds ``self._lock``."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(data_key)).all()
        old = self._snap
        ciphers = dict(old.ciphers) if old else {}
        blind = old.blind_index if old else None
        active: int | None = None
        for row in rows:
            known = row.version in ciphers if row.purpose == PURPOSE_BODY else blind is not None
            if known and not strict:
                if row.purpose == PURPOSE_BODY and row.status == STATUS_ACTIVE:
                    active = row.version
                continue
            try:
                key = self.kms.unwrap(row.wrapped_key, context=key_context(row.purpose, row.version))
            except KmsError:
                err = unwrap_error(self.kms, row.version, row.purpose, row.kek_id)
                if strict:
                    raise err from None
                log.error("%s", err)
                continue
            if len(key) != KEY_BYTES:  # pragma: no cover - only a foreign KMS could do this
                raise KeyRingError(f"data key {row.version} ({row.purpose}) is not {KEY_BYTES} bytes")
            if row.purpose == PURPOSE_BODY:
                ciphers[row.version] = AESGCM(key)
                if row.status == STATUS_ACTIVE:
                    active = row.version
            elif row.purpose == PURPOSE_BLIND_INDEX and (row.status == STATUS_ACTIVE or blind is None):
                blind = key
        if active is None:
            if old is None or strict:
                raise KeyRingError("no usable active body data key: run the server once (or `telehub keys "
                                   "rotate`) with the right TELEHUB_KEK_FILE")
            log.error("the active body data key could not be loaded; still encrypting under data key %d",
                      old.active)
            active = old.active
        if blind is None:
            raise KeyRingError("no usable blind-index key: run the server once with the right TELEHUB_KEK_FILE")
        max_version = max((row.version for row in rows), default=0)
        snap = _Snapshot(ciphers, active, blind, max_version, self._clock())
        self._snap = snap
        return snap

    def _snapshot(self) -> _Snapshot:
        snap = self._snap
        if snap is None:
            self.ensure()
            snap = self._snap
            assert snap is not None
            return snap
        if self._clock() - snap.loaded_at >= self.refresh_interval and self._lock.acquire(blocking=False):
            # one thread refreshes; the others carry on with the current snapshot meanwhile
            try:
                snap = self._load(strict=False)
            except Exception:  # a database hiccup must not fail requests that the cached keys can serve
                log.warning("data key refresh failed; retrying later", exc_info=True)
                snap = _Snapshot(snap.ciphers, snap.active, snap.blind_index, snap.max_version,
                                 self._clock() - self.refresh_interval + self.min_refresh_interval)
                self._snap = snap
            finally:
                self._lock.release()
        return snap

    # -- use ------------------------------------------------------------------------------------
    def active(self) -> tuple[int, AESGCM]:
        """The body key new writes use: (version, cipher)."""
        snap = self._snapshot()
        return snap.active, snap.ciphers[snap.active]

    def active_version(self) -> int:
        return self._snapshot().active

    def cipher(self, version: int) -> AESGCM | None:
        """The body key of ``version``, or None if there is no such usable key.

        A version above every version seen in ``data_key`` is a key rotated in by another
        process since the last load: reload once (one thread does; the others wait for it).
        Bodies come only from the database, so a forged version costs at most one query per read.
        """
        snap = self._snapshot()
        aead = snap.ciphers.get(version)
        if aead is not None or version <= snap.max_version:
            return aead
        with self._lock:
            current = self._snap
            if current is not None and version <= current.max_version:  # another thread reloaded meanwhile
                return current.ciphers.get(version)
            try:
                snap = self._load(strict=False)
            except Exception:
                log.warning("data key refresh failed", exc_info=True)
                return None
            return snap.ciphers.get(version)

    def blind_index_key(self) -> bytes:
        """The 32-byte HMAC-SHA256 key of the blind indexes (generated once, never rotated by ``keys rotate``)."""
        return self._snapshot().blind_index

    def versions(self) -> list[int]:
        """Body key versions this process can decrypt."""
        return sorted(self._snapshot().ciphers)

    def __repr__(self) -> str:
        snap = self._snap
        return f"KeyRing(kek_id={self.kms.key_id!r}, active={snap.active if snap else None})"


__all__ = [
    "STATUS_ACTIVE", "STATUS_RETIRED", "DataKey", "KeyRing", "KeyRingError", "create_data_key", "key_context",
    "list_keys", "lock_data_keys", "write_transaction",
]
