"""The audit trail: append (in the caller's transaction), verify, export, purge, materialize.

``append`` chains an entry on the shared chain 1 under its head row's lock, so its
entries get gap-free places in commit order; if the audited change rolls back, so
does its entry, and if the entry cannot be written the change fails with it.
``commit`` is for entries without a transaction of their own (reads, searches): it
hands them to the process's group-committing appender (:mod:`.appender`), which
chains them on a chain of the process's own, and returns once they are committed.
``verify`` walks every chain; ``entries`` (export) follow the global ``seq`` order.
Auditors search AuditEvents through FHIR: entries are copied ("materialized")
into the FHIR store just before any AuditEvent read or search.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, delete, func, insert, select, update

from fhir_gateway.audit.appender import GroupCommit, Prepared
from fhir_gateway.audit.chain import event_digest, link, link_hash, same
from fhir_gateway.audit.events import AuditInput, build_audit_event
from fhir_gateway.audit.tables import GENESIS, SEQUENCE, SHARED_CHAIN, audit_head, audit_log
from fhir_gateway.errors import DataIntegrityError, InvalidRequest
from fhir_gateway.storage.codec import BodyCodec, associated_data

RETENTION_YEARS = 6
YEAR_MICROS = 365.25 * 24 * 3600 * 1_000_000


# append's statements, built once (SQLAlchemy then reuses their cache key and compiled form)
_HEAD = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == SHARED_CHAIN)
_HEAD_LOCKED = _HEAD.with_for_update()
# the global seq: a sequence on PostgreSQL (never a lock shared by the chains), max + 1 on SQLite (whose
# writers hold the database's write lock anyway)
_INSERT_LOG = {
    "postgresql": insert(audit_log).values(seq=func.nextval(SEQUENCE)),
    "sqlite": insert(audit_log).values(
        seq=select(func.coalesce(func.max(audit_log.c.seq), 0) + 1).scalar_subquery()),
}
_ADVANCE_HEAD = (update(audit_head).where(audit_head.c.id == SHARED_CHAIN)
                 .values(seq=bindparam("new_seq"), hash=bindparam("new_hash")))


def _aad(event_id: str) -> bytes:
    return associated_data("AuditEvent", event_id, 0)


@dataclass
class VerifyReport:
    ok: bool
    checked: int
    problem: str | None = None  # edited | deleted | inserted | reordered
    seq: int | None = None  # the entry's global seq; for a deletion, the missing place in the chain
    chain: int | None = None
    chains: int = 1

    def __str__(self) -> str:
        if self.ok:
            return f"audit chains intact: {self.checked} entries in {self.chains} chain(s) verified"
        return (f"audit chain {self.chain} BROKEN at entry {self.seq}: {self.problem} "
                f"(checked {self.checked} entries before it)")


class AuditTrail:
    def __init__(self, key: bytes, codec: BodyCodec) -> None:
        if len(key) < 32:
            raise ValueError("the audit HMAC key must be at least 32 bytes")
        self._key = key
        self.codec = codec
        self._group: GroupCommit | None = None
        self._group_guard = threading.Lock()

    # -- writing -----------------------------------------------------------------------------------
    def prepare(self, data: AuditInput, *, now: int | None = None) -> tuple[dict[str, Any], Prepared]:
        """Build, seal and digest the AuditEvent of ``data``: everything that does not depend on its place."""
        recorded = now if now is not None else time.time_ns() // 1000
        event = build_audit_event(data, recorded)
        return event, Prepared(
            event["id"], recorded, event["action"], event["subtype"][0]["code"], event["outcome"], _agent(data),
            " " + " ".join(sorted(data.patients)) + " " if data.patients else "",
            self.codec.encode(event, _aad(event["id"])), event_digest(event))

    def _advance_head(self, conn: Connection, seq: int, digest: str) -> None:
        conn.execute(_ADVANCE_HEAD, {"new_seq": seq, "new_hash": digest})

    def append(self, conn: Connection, data: AuditInput, *, now: int | None = None) -> dict[str, Any]:
        """Chain an entry in the caller's transaction (it commits or rolls back with the audited change),
        on the shared chain (1), under its head row's lock."""
        event, entry = self.prepare(data, now=now)
        postgres = conn.dialect.name == "postgresql"
        head = conn.execute(_HEAD_LOCKED if postgres else _HEAD).one()
        place = int(head.seq) + 1
        digest = link(self._key, place, head.hash, entry.digest)
        conn.execute(_INSERT_LOG["postgresql" if postgres else "sqlite"], {
            "chain": SHARED_CHAIN, "chain_seq": place, "event_id": entry.event_id, "recorded": entry.recorded,
            "action": entry.action, "subtype": entry.subtype, "outcome": entry.outcome, "agent": entry.agent,
            "patients": entry.patients, "body": entry.body, "prev_hash": head.hash, "hash": digest,
            "materialized": False})
        self._advance_head(conn, place, digest)
        return event

    def commit(self, engine: Engine, data: AuditInput, *, now: int | None = None,
               connection: Connection | None = None) -> dict[str, Any]:
        """Append an entry in a transaction of its own, group-committed with concurrent requests' entries.

        Returns once the entry is committed; :class:`~fhir_gateway.audit.appender.AuditWriteFailed` if the
        transaction holding it failed (then no entry of its batch was written). ``connection``: a checked-out
        connection of ``engine``, not in a transaction, that the batch may be written on.
        """
        event, entry = self.prepare(data, now=now)
        self.appender(engine).commit(entry, connection)
        return event

    def appender(self, engine: Engine) -> GroupCommit:
        """The process's group-committing appender for ``engine`` (made on first use)."""
        group = self._group
        if group is None or group.engine is not engine:
            with self._group_guard:
                if self._group is None or self._group.engine is not engine:
                    self._group = GroupCommit(engine, self._key)
                group = self._group
        return group

    # -- reading -----------------------------------------------------------------------------------
    def decode(self, row: Any) -> dict[str, Any]:
        return self.codec.decode(row.body, _aad(row.event_id))

    def entries(self, conn: Connection, *, since: int | None = None, until: int | None = None,
                patient: str | None = None, batch: int = 500) -> Iterator[dict[str, Any]]:
        """AuditEvents in chain order, filtered by recorded time and patient (streamed in batches)."""
        last = -1
        while True:
            stmt = select(audit_log).where(audit_log.c.seq > last).order_by(audit_log.c.seq).limit(batch)
            if since is not None:
                stmt = stmt.where(audit_log.c.recorded >= since)
            if until is not None:
                stmt = stmt.where(audit_log.c.recorded <= until)
            if patient is not None:
                stmt = stmt.where(audit_log.c.patients.contains(f" {patient} "))
            rows = conn.execute(stmt).all()
            if not rows:
                return
            for row in rows:
                yield self.decode(row)
            last = rows[-1].seq

    def count(self, conn: Connection) -> int:
        return int(conn.execute(select(func.count()).select_from(audit_log)).scalar_one())

    # -- verifying ---------------------------------------------------------------------------------
    def verify(self, conn: Connection, batch: int = 1000) -> VerifyReport:
        """Walk every chain (one pass over the log in global order): the first edited, deleted, inserted or
        reordered entry fails the check.

        Per chain, places must follow each other from the chain's base without gaps and in the global order
        too; each entry's hash must match its content, place and predecessor; the last entry must be the
        head. An entry of a chain without a head row is an insertion.
        """
        heads = {int(h.id): h for h in conn.execute(select(audit_head))}
        state = {c: (int(h.base_seq) + 1, str(h.base_hash)) for c, h in heads.items()}  # next place, prev hash
        places: dict[str, tuple[int, int]] = {}  # hash -> (chain, place)
        present: set[tuple[int, int]] = set()
        for r in conn.execute(select(audit_log.c.hash, audit_log.c.chain, audit_log.c.chain_seq)):
            places[r.hash] = (int(r.chain), int(r.chain_seq))
            present.add((int(r.chain), int(r.chain_seq)))
        checked = 0
        last = None
        while True:
            stmt = select(audit_log).order_by(audit_log.c.seq).limit(batch)
            if last is not None:
                stmt = stmt.where(audit_log.c.seq > last)
            rows = conn.execute(stmt).all()
            if not rows:
                break
            for row in rows:
                problem = self._check(row, heads, state, places, present)
                if problem is not None:
                    return VerifyReport(False, checked, problem[0], problem[1], problem[2])
                checked += 1
                last = row.seq
        for chain, head in heads.items():
            expected, prev = state[chain]
            if expected - 1 != int(head.seq) or not same(prev, head.hash):
                return VerifyReport(False, checked, "deleted", expected, chain)
        return VerifyReport(True, checked, chains=len(heads))

    def _check(self, row: Any, heads: dict[int, Any], state: dict[int, tuple[int, str]],
               places: dict[str, tuple[int, int]], present: set[tuple[int, int]]) -> tuple[str, int, int] | None:
        """(problem, seq, chain) for one row in global order, or None (and the chain's state advanced)."""
        chain, place, seq = int(row.chain), int(row.chain_seq), int(row.seq)
        if chain not in heads:
            return "inserted", seq, chain
        expected, prev = state[chain]
        if place > int(heads[chain].seq) or place < expected:
            return "inserted", seq, chain
        if place != expected:
            if (chain, expected) in present:  # the missing place comes later in the global order
                return "reordered", seq, chain
            return "deleted", expected, chain
        try:
            event = self.decode(row)
        except DataIntegrityError:
            return "edited", seq, chain
        if not same(link_hash(self._key, place, row.prev_hash, event, chain), row.hash):
            return "edited", seq, chain
        if not same(row.prev_hash, prev):
            moved = places.get(row.prev_hash)
            reordered = moved is not None and moved[0] == chain and moved[1] != place - 1
            return ("reordered" if reordered else "inserted"), seq, chain
        state[chain] = (expected + 1, row.hash)
        return None

    # -- retention ---------------------------------------------------------------------------------
    def purge(self, conn: Connection, before: int, ctx_data: AuditInput, *, now: int | None = None) -> int:
        """Remove entries recorded before ``before``; refuses anything younger than six years.

        In each chain only a contiguous run from the start of its kept part may go (so the chain stays
        verifiable): up to the first entry recorded at or after ``before``.
        """
        now = now if now is not None else time.time_ns() // 1000
        if before > now - RETENTION_YEARS * YEAR_MICROS:
            raise InvalidRequest("audit entries must be kept six years; nothing younger can be purged")
        heads = select(audit_head).order_by(audit_head.c.id)
        if conn.dialect.name == "postgresql":
            heads = heads.with_for_update()
        removed = 0
        for head in conn.execute(heads).all():
            chain = int(head.id)
            rows = conn.execute(select(audit_log.c.chain_seq, audit_log.c.hash, audit_log.c.recorded)
                                .where(audit_log.c.chain == chain, audit_log.c.chain_seq > head.base_seq)
                                .order_by(audit_log.c.chain_seq)).all()
            cut = None
            for row in rows:
                if row.recorded >= before:
                    break
                cut = row
            if cut is None:
                continue
            removed += int(conn.execute(delete(audit_log).where(
                and_(audit_log.c.chain == chain, audit_log.c.chain_seq > head.base_seq,
                     audit_log.c.chain_seq <= cut.chain_seq))).rowcount)
            conn.execute(update(audit_head).where(audit_head.c.id == chain).values(
                base_seq=cut.chain_seq, base_hash=cut.hash))
        ctx_data.description = f"retention purge removed {removed} audit entries"
        self.append(conn, ctx_data, now=now)
        return removed

    # -- FHIR view ---------------------------------------------------------------------------------
    def materialize(self, conn: Connection, repository: Any, batch: int = 500) -> int:
        """Copy not-yet-copied entries into the FHIR store as AuditEvent resources (idempotent)."""
        total = 0
        while True:
            stmt = (select(audit_log.c.seq, audit_log.c.event_id, audit_log.c.body)
                    .where(audit_log.c.materialized.is_(False)).order_by(audit_log.c.seq).limit(batch))
            if conn.dialect.name == "postgresql":
                stmt = stmt.with_for_update()
            rows = conn.execute(stmt).all()
            if not rows:
                return total
            repository.upsert_many(conn, [self.decode(r) for r in rows], skip_unchanged=True, method="POST")
            conn.execute(update(audit_log).where(audit_log.c.seq.in_([r.seq for r in rows]))
                         .values(materialized=True))
            total += len(rows)


def _agent(data: AuditInput) -> str | None:
    who = data.ctx.user or data.ctx.client_id
    return who[:255] if who else None


__all__ = ["GENESIS", "AuditTrail", "VerifyReport"]
