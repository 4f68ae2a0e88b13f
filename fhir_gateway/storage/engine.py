"""Engine construction for SQLite (embedded default) and PostgreSQL (psycopg 3).

SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` for write transactions
so concurrent writers queue instead of failing with "database is locked"
half-way through a transaction.
"""
from __future__ import annotations

import fcntl
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and pin them to the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def make_engine(url: str, *, echo: bool = False) -> Engine:
    url = normalize_url(url)
    parsed = make_url(url)
    # hide_parameters: bound values (PHI) never appear in SQLAlchemy's exception messages
    kwargs: dict[str, Any] = {"echo": echo, "future": True, "hide_parameters": True}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        in_memory = database in ("", ":memory:")
        if not in_memory:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 60}
        if in_memory:
            kwargs["poolclass"] = StaticPool
        else:
            # most recently returned connection first: a SQLite connection keeps its page cache across its
            # own transactions but drops it whenever another connection has written, so reusing the same
            # connection (a read, then its audit entry, then the next read) keeps the cache warm
            kwargs["pool_use_lifo"] = True
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine, wal=not in_memory)
        return engine
    # psycopg prepares a statement after 5 runs and PostgreSQL then switches to a generic plan,
    # which for skewed search parameters (one patient's Observations) is far worse: plan each query
    # for its own values instead.
    # No pool_pre_ping: it costs a round trip (SELECT 1) on every checkout, i.e. every request. Connections
    # are recycled after 30 minutes instead (before server or firewall idle timeouts), and a connection
    # found dead mid-request makes SQLAlchemy invalidate the whole pool, so after a database restart one
    # request per worker fails and the next ones get fresh connections.
    kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=False, pool_recycle=1800,
                  connect_args={"options": "-c plan_cache_mode=force_custom_plan"})
    return create_engine(url, **kwargs)


def _configure_sqlite(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        if wal:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        # read performance: a larger page cache (32 MiB), memory-mapped reads, temp b-trees
        # (IN-list materialisation, ORDER BY) in memory
        cur.execute("PRAGMA cache_size=-32768")
        cur.execute("PRAGMA mmap_size=268435456")
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.info.pop("telehub_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def read_transaction(conn: Connection) -> Iterator[Connection]:
    """A read transaction on a connection the caller checked out (and may use again after it):
    what ``Repository.transaction(write=False)`` runs, without the checkout."""
    conn.info["telehub_write"] = False
    with conn.begin():
        yield conn


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


class WriterLock:
    """Queues SQLite writers fairly: a thread lock within the process and ``flock`` across processes.

    Without it, writers that find the database locked poll with SQLite's busy handler, whose
    sleeps grow to 100 ms, which is what a p99 of seconds under write load came from.
    A blocked ``flock`` wakes as soon as the holder releases it.
    """

    def __init__(self, database: str | None) -> None:
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        self._pid = 0
        self._path = Path(database + ".writer.lock") if database and database != ":memory:" else None

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._thread_lock:
            if self._path is None:
                yield
                return
            fd = self._file()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _file(self) -> int:
        """The lock file, opened once per process (a forked worker opens its own: flock is per open file)."""
        pid = os.getpid()
        if self._fd is None or self._pid != pid:
            assert self._path is not None
            self._fd, self._pid = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600), pid
        return self._fd


class NoLock:
    @contextmanager
    def held(self) -> Iterator[None]:
        yield


_WRITER_LOCKS: weakref.WeakKeyDictionary[Engine, WriterLock | NoLock] = weakref.WeakKeyDictionary()
_WRITER_LOCKS_GUARD = threading.Lock()


def writer_lock(engine: Engine) -> WriterLock | NoLock:
    """The lock write transactions take before BEGIN (SQLite only; PostgreSQL locks rows itself).

    One per engine, shared by everything that writes through it (the repository, the audit appender),
    so in-process writers queue on one fair thread lock before the cross-process ``flock``.
    """
    with _WRITER_LOCKS_GUARD:
        lock = _WRITER_LOCKS.get(engine)
        if lock is None:
            lock = WriterLock(engine.url.database) if is_sqlite(engine) else NoLock()
            _WRITER_LOCKS[engine] = lock
        return lock
