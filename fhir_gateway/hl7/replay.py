"""``telehub hl7 replay``: re-run open dead letters through the ingestor after a mapping fix.

A dead letter that now maps is applied exactly like a live message (inbox row, FHIR writes,
AuditEvent in one transaction) and marked ``replayed``; one whose (sender, control id) is
meanwhile in the inbox (the sender re-sent it and it went through) is ``superseded``; one
that still fails keeps ``open`` with its new reason and one more attempt.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import select, update

from fhir_gateway.hl7.ingest import Ingestor, now_us
from fhir_gateway.hl7.sealing import unseal
from fhir_gateway.hl7.tables import hl7_dead_letter, hl7_inbox


@dataclass
class ReplayReport:
    counts: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        return ", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items())) or "no open dead letters"


def replay(ingestor: Ingestor, ids: list[str] | None = None, limit: int = 10_000) -> ReplayReport:
    repo = ingestor.services.repository
    query = select(hl7_dead_letter.c.id, hl7_dead_letter.c.sender, hl7_dead_letter.c.control_id,
                   hl7_dead_letter.c.raw).where(hl7_dead_letter.c.status == "open")
    if ids:
        query = query.where(hl7_dead_letter.c.id.in_(ids))
    with repo.transaction() as conn:
        rows = conn.execute(query.order_by(hl7_dead_letter.c.received).limit(limit)).all()
    report = ReplayReport()
    for row in rows:
        with repo.transaction() as conn:
            in_inbox = row.control_id and conn.execute(select(hl7_inbox.c.pk).where(
                hl7_inbox.c.sender == row.sender, hl7_inbox.c.control_id == row.control_id)).first()
        if in_inbox:
            _mark(ingestor, row.id, "superseded")
            report.counts["superseded"] += 1
            continue
        raw = unseal(repo.codec, row.raw, "hl7_dead_letter", row.id)
        outcome = ingestor.handle(raw, None, dead_letter=row.id)
        report.counts["replayed" if outcome.code == "AA" else "still failing"] += 1
    return report


def _mark(ingestor: Ingestor, dl_id: str, status: str) -> None:
    with ingestor.services.repository.transaction(write=True) as conn:
        conn.execute(update(hl7_dead_letter).where(hl7_dead_letter.c.id == dl_id).values(status=status,
                                                                                         updated=now_us()))
