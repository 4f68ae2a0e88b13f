"""The audit trail: append (in the caller's transaction), verify, export, purge, materialize.

``append`` takes the chain head's row lock, so entries get gap-free sequence
numbers in commit order; if the audited change rolls back, so does its entry,
and if the entry cannot be written the change fails with it. ``commit`` is for
entries without a transaction of their own (reads, searches): it hands them to the
process's group-committing appender (:mod:`.appender`) and returns once they are
committed.
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
from fhir_gateway.audit.tables import GENESIS, audit_head, audit_log
from fhir_gateway.errors import DataIntegrityError, InvalidRequest
from fhir_gateway.storage.codec import BodyCodec, associated_data

RETENTION_YEARS = 6
YEAR_MICROS = 365.25 * 24 * 3600 * 1_000_000


# append's statements, built once (SQLAlchemy then reuses their cache key and compiled form)
_HEAD = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
_HEAD_LOCKED = _HEAD.with_for_update()
_INSERT_LOG = insert(audit_log)
_ADVANCE_HEAD = (update(audit_head).where(audit_head.c.id == 1)
                 .values(seq=bindparam("new_seq"), hash=bindparam("new_hash")))


def _aad(event_id: str) -> bytes:
    return associated_data("AuditEvent", event_id, 0)


@dataclass
class VerifyReport:
    ok: bool
    checked: int
    problem: str | None = None  # edited | deleted | inserted | reordered
    seq: int | None = None

    def __str__(self) -> str:
        if self.ok:
            return f"audit chain intact: {self.checked} entries verified"
        return f"audit chain BROKEN at entry {self.seq}: {self.problem} (checked {self.checked} entries before it)"


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
        """Chain an entry in the caller's transaction (it commits or rolls back with the audited change)."""
        event, entry = self.prepare(data, now=now)
        head = conn.execute(_HEAD_LOCKED if conn.dialect.name == "postgresql" else _HEAD).one()
        seq = int(head.seq) + 1
        digest = link(self._key, seq, head.hash, entry.digest)
        conn.execute(_INSERT_LOG, {
            "seq": seq, "event_id": entry.event_id, "recorded": entry.recorded, "action": entry.action,
            "subtype": entry.subtype, "outcome": entry.outcome, "agent": entry.agent, "patients": entry.patients,
            "body": entry.body, "prev_hash": head.hash, "hash": digest, "materialized": False})
        self._advance_head(conn, seq, digest)
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
        head = conn.execute(select(audit_head).where(audit_head.c.id == 1)).one()
        prev = head.base_hash
        expected = int(head.base_seq) + 1
        checked = 0
        last = int(head.base_seq)
        hashes = {r.hash: r.seq for r in conn.execute(select(audit_log.c.hash, audit_log.c.seq))}
        while True:
            rows = conn.execute(select(audit_log).where(audit_log.c.seq > last).order_by(audit_log.c.seq)
                                .limit(batch)).all()
            if not rows:
                break
            for row in rows:
                if row.seq > int(head.seq):
                    return VerifyReport(False, checked, "inserted", int(row.seq))
                if row.seq != expected:
                    return VerifyReport(False, checked, "deleted", expected)
                try:
                    event = self.decode(row)
                except DataIntegrityError:
                    return VerifyReport(False, checked, "edited", int(row.seq))
                if not same(link_hash(self._key, int(row.seq), row.prev_hash, event), row.hash):
                    return VerifyReport(False, checked, "edited", int(row.seq))
                if not same(row.prev_hash, prev):
                    moved = row.prev_hash in hashes and hashes[row.prev_hash] != row.seq - 1
                    return VerifyReport(False, checked, "reordered" if moved else "inserted", int(row.seq))
                prev = row.hash
                expected += 1
                checked += 1
                last = int(row.seq)
        if expected - 1 != int(head.seq) or not same(prev, head.hash):
            return VerifyReport(False, checked, "deleted", expected)
        return VerifyReport(True, checked)

    # -- retention ---------------------------------------------------------------------------------
    def purge(self, conn: Connection, before: int, ctx_data: AuditInput, *, now: int | None = None) -> int:
        """Remove entries recorded before ``before``; refuses anything younger than six years."""
        now = now if now is not None else time.time_ns() // 1000
        if before > now - RETENTION_YEARS * YEAR_MICROS:
            raise InvalidRequest("audit entries must be kept six years; nothing younger can be purged")
        head = conn.execute(select(audit_head).where(audit_head.c.id == 1).with_for_update()
                            if conn.dialect.name == "postgresql" else
                            select(audit_head).where(audit_head.c.id == 1)).one()
        # only a contiguous run from the start of the kept chain may go, so the chain stays verifiable
        rows = conn.execute(select(audit_log.c.seq, audit_log.c.hash, audit_log.c.recorded)
                            .where(audit_log.c.seq > head.base_seq).order_by(audit_log.c.seq)).all()
        cut = None
        for row in rows:
            if row.recorded >= before:
                break
            cut = row
        removed = 0
        if cut is not None:
            removed = int(conn.execute(delete(audit_log).where(
                and_(audit_log.c.seq > head.base_seq, audit_log.c.seq <= cut.seq))).rowcount)
            conn.execute(update(audit_head).where(audit_head.c.id == 1).values(
                base_seq=cut.seq, base_hash=cut.hash))
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
