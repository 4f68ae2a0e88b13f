"""Group commit of audit entries that have no transaction of their own to ride in (reads, searches).

A read changes nothing, so it runs in a read transaction and its audit entry is appended afterwards,
before the response leaves; if the entry cannot be written the read fails. Doing that in one short
write transaction per read (writer lock, head row, insert, head update, commit) doubled the CPU of a
read. Here, requests hand their prepared entries to the one :class:`GroupCommit` of the process:

- the first request to arrive while no commit is under way becomes the *leader*: it takes every
  pending entry, chains them (consecutive places after the head, each hash over its predecessor's)
  and writes them in **one** transaction, then wakes the requests of that batch and hands the lead
  to the first request that queued meanwhile, which writes everything queued by then. Under
  concurrency batches grow by themselves; a lone request commits its own entry at once (no timer,
  no hand-off to another thread);
- every request returns only after the transaction holding its entry committed. If that
  transaction fails, it rolls back (no entry of the batch is written, the head stays) and *every*
  request of the batch raises :class:`AuditWriteFailed`, so none of them is answered unaudited.

**One chain per process.** Entries appended inside a change's own transaction go to the shared chain 1
(:meth:`AuditTrail.append`); each process's appender claims a chain of its own (a new ``audit_head``
row) the first time it writes, so worker processes never wait for each other's head row lock, and its
cached head is always current. ``telehub audit verify`` walks every chain.

The leader writes on the connection its own read used (still checked out, its read transaction
over), or else on one from the pool, with plain SQL rather than SQLAlchemy statements (whose
per-statement work was most of the cost). Reusing the read's connection matters on SQLite: a
connection keeps its page cache across its own writes but drops all of it once another connection
has written. The head is advanced with a compare-and-set update (``WHERE seq = cached AND hash =
cached``); on PostgreSQL a single entry is written by one autocommitted statement (the update and the
insert in one ``WITH``: one round trip instead of three). Should the update match nothing (the chain's
head was moved by anything but this appender), the head is read again under its lock.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from fhir_gateway.audit.chain import link
from fhir_gateway.audit.tables import GENESIS
from fhir_gateway.storage.engine import writer_lock

log = logging.getLogger("telehub.audit")

MAX_BATCH = 500
CLAIM_ATTEMPTS = 5

# the chained columns; ``seq`` (global order) is filled in by the database: see _SEQ
_COLUMNS = ("chain", "chain_seq", "event_id", "recorded", "action", "subtype", "outcome", "agent", "patients",
            "body", "prev_hash", "hash", "materialized")
_SEQ = {"postgresql": "nextval('audit_log_seq')", "sqlite": "(SELECT coalesce(max(seq), 0) + 1 FROM audit_log)"}
_VALUES = ", ".join("?" for _ in _COLUMNS)
_INSERT = f"INSERT INTO audit_log (seq, {', '.join(_COLUMNS)}) VALUES ({{seq}}, {_VALUES})"
_ADVANCE_IF = "UPDATE audit_head SET seq = ?, hash = ? WHERE id = ? AND seq = ? AND hash = ?"
_ADVANCE = "UPDATE audit_head SET seq = ?, hash = ? WHERE id = ?"
_HEAD = "SELECT seq, hash FROM audit_head WHERE id = ?"
# PostgreSQL, one entry on the cached head: compare-and-set and insert in one statement, so that in autocommit
# mode the whole append is one round trip (it inserts nothing if the head moved)
_ADVANCE_AND_INSERT = (f"WITH h AS ({_ADVANCE_IF} RETURNING 1) INSERT INTO audit_log (seq, {', '.join(_COLUMNS)}) "
                       f"SELECT {{seq}}, {_VALUES} FROM h")
# a new chain: the next id after every chain there is (chain 1 is the shared one)
_CLAIM = ("INSERT INTO audit_head (id, seq, hash, base_seq, base_hash) "
          "SELECT coalesce(max(id), 1) + 1, 0, ?, 0, ? FROM audit_head RETURNING id")


class AuditWriteFailed(RuntimeError):
    """The transaction holding this request's audit entry failed: the request must not be answered."""


@dataclass(slots=True)
class Prepared:
    """An audit entry ready to be chained: everything but its place (seq, prev_hash, hash)."""

    event_id: str
    recorded: int
    action: str
    subtype: str
    outcome: str
    agent: str | None
    patients: str
    body: bytes
    digest: bytes  # chain.event_digest of the AuditEvent


class _Ticket:
    """One request's entry; ``wake`` is held until the request may go on: its batch is done, or it is to
    lead the next one (so a finished batch wakes its own requests and one successor, not everybody)."""

    __slots__ = ("done", "entry", "error", "wake")

    def __init__(self, entry: Prepared) -> None:
        self.entry = entry
        self.done = False
        self.error: BaseException | None = None
        self.wake = threading.Lock()
        self.wake.acquire()


def chain_rows(key: bytes, chain: int, head: tuple[int, str],
               entries: Sequence[Prepared]) -> tuple[list[tuple[Any, ...]], tuple[int, str]]:
    """The rows (in :data:`_COLUMNS` order) of ``entries`` chained in ``chain`` after ``head`` (its last
    place and hash), and the new head."""
    place, prev = head
    rows = []
    for e in entries:
        place += 1
        digest = link(key, place, prev, e.digest, chain)
        rows.append((chain, place, e.event_id, e.recorded, e.action, e.subtype, e.outcome, e.agent, e.patients,
                     e.body, prev, digest, False))
        prev = digest
    return rows, (place, prev)


class GroupCommit:
    """The process's audit appender for one engine (see the module docstring). Thread-safe."""

    def __init__(self, engine: Engine, key: bytes, *, max_batch: int = MAX_BATCH) -> None:
        self.engine = engine
        self._key = key
        self._max_batch = max_batch
        self._sqlite = engine.dialect.name == "sqlite"
        self._postgres = engine.dialect.name == "postgresql"
        qmark = engine.dialect.paramstyle == "qmark"
        seq = _SEQ["postgresql" if self._postgres else "sqlite"]
        self._sql = {name: sql if qmark else sql.replace("?", "%s") for name, sql in (
            ("insert", _INSERT.format(seq=seq)), ("advance_if", _ADVANCE_IF), ("advance", _ADVANCE),
            ("advance_and_insert", _ADVANCE_AND_INSERT.format(seq=seq)), ("claim", _CLAIM),
            ("head", _HEAD + (" FOR UPDATE" if self._postgres else "")))}
        self._writer = writer_lock(engine)
        self._reset()
        # counters, for tests and benchmarks
        self.batches = 0
        self.entries = 0

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._pending: list[_Ticket] = []
        self._busy = False  # a leader is writing (or about to): newcomers queue
        self.chain: int | None = None  # this process's chain, claimed on the first write
        self._head: tuple[int, str] | None = None  # the chain's last place and hash, as last written

    # -- the request side -------------------------------------------------------------------------
    def commit(self, entry: Prepared, connection: Connection | None = None) -> None:
        """Return once ``entry`` is committed; :class:`AuditWriteFailed` if its batch could not be.

        ``connection``: the caller's checked-out connection, not in a transaction; if the caller leads
        the batch, it is written on it (no second checkout; SQLite keeps that connection's page cache).
        """
        if self._pid != os.getpid():  # a forked child: the parent's lock and queue are not ours
            self._reset()
        ticket = _Ticket(entry)
        with self._lock:
            self._pending.append(ticket)
            lead = not self._busy
            self._busy = True
        if not lead:
            ticket.wake.acquire()  # until its batch is done, or it is handed the lead
        if not ticket.done:
            self._lead(connection)
        if ticket.error is not None:
            raise AuditWriteFailed("the audit entry of this request could not be written") from ticket.error

    def _lead(self, connection: Connection | None) -> None:
        """Write everything pending (up to ``max_batch``) in one transaction, then wake that batch's
        requests and hand the lead to the first request that queued meanwhile, if any."""
        with self._lock:
            batch = self._pending[:self._max_batch]
            del self._pending[:self._max_batch]
        error: BaseException | None = None
        try:
            self._write([t.entry for t in batch], connection)
        except BaseException as exc:  # every request of the batch learns about it
            error = exc
        with self._lock:
            for t in batch:
                t.done, t.error = True, error
            successor = self._pending[0] if self._pending else None
            if successor is None:
                self._busy = False
        for t in batch:
            if t.wake.locked():
                t.wake.release()
        if successor is not None:
            successor.wake.release()  # it leads the next batch (the appender stays busy meanwhile)

    # -- the leader side --------------------------------------------------------------------------
    def _write(self, entries: list[Prepared], connection: Connection | None) -> None:
        if connection is not None:
            try:
                new_head = self._locked_append(connection.connection.dbapi_connection, entries)
            except BaseException:
                self._head = None
                connection.invalidate()  # it may be broken: the pool will not hand it out again
                raise
        else:
            conn = self.engine.raw_connection()
            try:
                new_head = self._locked_append(conn.dbapi_connection, entries)
            except BaseException:
                self._head = None
                conn.invalidate()
                raise
            finally:
                conn.close()  # back to the pool (or, invalidated, discarded)
        self._head = new_head
        self.batches += 1
        self.entries += len(entries)

    def _locked_append(self, conn: Any, entries: list[Prepared]) -> tuple[int, str]:
        with self._writer.held():  # SQLite's writers queue here (PostgreSQL: the chain's row lock)
            if self.chain is None:
                self._claim(conn)
            return self._append(conn, entries)

    def _claim(self, conn: Any) -> None:
        """A chain of this process's own: a new head row (another process claiming at the same moment
        may take the same id first; then try the next)."""
        for attempt in range(CLAIM_ATTEMPTS):
            cur = conn.cursor()
            try:
                if self._sqlite:
                    cur.execute("BEGIN IMMEDIATE")
                cur.execute(self._sql["claim"], (GENESIS, GENESIS))
                chain = int(cur.fetchone()[0])
                if self._sqlite:
                    cur.execute("COMMIT")
                else:
                    conn.commit()
            except Exception:
                try:
                    if self._sqlite:
                        cur.execute("ROLLBACK")
                    else:
                        conn.rollback()
                except Exception:  # no transaction to roll back (BEGIN itself failed)
                    pass
                if attempt == CLAIM_ATTEMPTS - 1:
                    raise
                continue
            finally:
                cur.close()
            self.chain, self._head = chain, (0, GENESIS)
            log.info("audit: this process appends to chain %d", chain)
            return

    def _append(self, conn: Any, entries: list[Prepared]) -> tuple[int, str]:
        if self._postgres and self._head is not None and len(entries) == 1:
            new_head = self._single_statement(conn, entries[0])
            if new_head is not None:
                return new_head
        return self._transaction(conn, entries)

    def _single_statement(self, conn: Any, entry: Prepared) -> tuple[int, str] | None:
        """PostgreSQL, one entry on the cached head: one autocommitted statement (one round trip instead of
        three: update, insert, commit). None if the head had moved: then nothing was written.

        (A batch of several entries goes through :meth:`_transaction`, whose inserts run one after the
        other: a chain's places must come in the order of the global ``seq``, which one multi-row
        statement would not promise.)"""
        assert self.chain is not None and self._head is not None
        head = self._head
        rows, new_head = chain_rows(self._key, self.chain, head, [entry])
        conn.autocommit = True  # the connection is idle here: its read transaction is over
        try:
            cur = conn.cursor()
            try:
                cur.execute(self._sql["advance_and_insert"], (*new_head, self.chain, *head, *rows[0]))
                written = cur.rowcount == 1
            finally:
                cur.close()
        finally:
            conn.autocommit = False
        return new_head if written else None

    def _transaction(self, conn: Any, entries: list[Prepared]) -> tuple[int, str]:
        """Chain and write ``entries`` in one transaction on the DBAPI connection ``conn``."""
        assert self.chain is not None
        chain = self.chain
        cur = conn.cursor()
        try:
            if self._sqlite:
                cur.execute("BEGIN IMMEDIATE")
            head = self._head
            rows: list[tuple[Any, ...]] = []
            new_head: tuple[int, str] | None = None
            if head is not None:  # compare-and-set on the cached head: one statement instead of two
                rows, new_head = chain_rows(self._key, chain, head, entries)
                cur.execute(self._sql["advance_if"], (*new_head, chain, *head))
                if cur.rowcount != 1:
                    new_head = None
            if new_head is None:  # the head is not known, or was moved: read it under its lock
                cur.execute(self._sql["head"], (chain,))
                place, digest = cur.fetchone()
                rows, new_head = chain_rows(self._key, chain, (int(place), str(digest)), entries)
                cur.execute(self._sql["advance"], (*new_head, chain))
            self._insert(cur, rows)
            if self._sqlite:
                cur.execute("COMMIT")
            else:
                conn.commit()
            return new_head
        except BaseException:
            try:
                if self._sqlite:
                    cur.execute("ROLLBACK")
                else:
                    conn.rollback()
            except Exception:  # the connection is discarded anyway
                pass
            raise
        finally:
            cur.close()

    def _insert(self, cur: Any, rows: list[tuple[Any, ...]]) -> None:
        """Insert in order (each statement takes the next global ``seq``)."""
        if len(rows) == 1:
            cur.execute(self._sql["insert"], rows[0])
        else:
            cur.executemany(self._sql["insert"], rows)


__all__ = ["AuditWriteFailed", "GroupCommit", "Prepared", "chain_rows"]
