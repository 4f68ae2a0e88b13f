"""The outbound queue: v2 messages for a clinic's engine, delivered in order, retried with back-off.

A message is enqueued in the transaction of the change that caused it (so a change is never
sent without being stored, nor stored without being queued), then delivered by
:meth:`OutboundQueue.deliver_due` over MLLP. Per destination, messages go in enqueue order:
a failure stops that destination's run until the retry time (exponential back-off, capped),
so a later message never overtakes an earlier one. AA marks a message sent; AE/AR, a
timeout or a refused connection is a retry; after ``max_attempts`` the message is ``failed``
and waits for an operator (``telehub hl7 outbound retry``).
"""
from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection, func, insert, select, update

from fhir_gateway.hl7.ack import ack_code_of
from fhir_gateway.hl7.client import MllpClient, parse_destination
from fhir_gateway.hl7.ingest import now_us
from fhir_gateway.hl7.sealing import seal, unseal
from fhir_gateway.hl7.tables import hl7_outbound
from fhir_gateway.storage.repository import Repository

log = logging.getLogger("telehub.hl7.outbound")
_TIEBREAK = itertools.count()
Connector = Callable[[str], "Sender"]


class Sender:
    """One open MLLP connection to a destination (a seam: tests pass a fake)."""

    def __init__(self, destination: str, timeout: float = 30.0) -> None:
        host, port = parse_destination(destination)
        self.client = MllpClient(host, port, timeout=timeout)

    def send(self, payload: bytes) -> bytes:
        return self.client.send(payload)

    def close(self) -> None:
        self.client.close()


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    destinations: set[str] = field(default_factory=set)


class OutboundQueue:
    def __init__(self, repository: Repository, *, connector: Connector = Sender, max_attempts: int = 10,
                 base_delay_s: float = 2.0, max_delay_s: float = 300.0) -> None:
        self.repository = repository
        self.connector = connector
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s

    def enqueue(self, conn: Connection, destination: str, payload: bytes, *, event: str, control_id: str) -> str:
        parse_destination(destination)
        msg_id = uuid.uuid4().hex
        now = now_us()
        conn.execute(insert(hl7_outbound).values(
            id=msg_id, seq=now * 1000 + next(_TIEBREAK) % 1000, destination=destination, event=event[:32],
            control_id=control_id[:199], status="pending", attempts=0, next_attempt=now, created=now,
            payload=seal(self.repository.codec, payload, "hl7_outbound", msg_id)))
        return msg_id

    def delay_us(self, attempts: int) -> int:
        return int(min(self.max_delay_s, self.base_delay_s * 2 ** max(0, attempts - 1)) * 1_000_000)

    def deliver_due(self, now: int | None = None) -> DeliveryReport:
        """One pass over every destination with a due message; returns what happened."""
        now = now if now is not None else now_us()
        report = DeliveryReport()
        with self.repository.transaction() as conn:
            destinations = [r[0] for r in conn.execute(
                select(hl7_outbound.c.destination).where(hl7_outbound.c.status == "pending")
                .group_by(hl7_outbound.c.destination).having(func.min(hl7_outbound.c.next_attempt) <= now))]
        for destination in destinations:
            report.destinations.add(destination)
            self._deliver(destination, now, report)
        return report

    def _deliver(self, destination: str, now: int, report: DeliveryReport) -> None:
        with self.repository.transaction() as conn:
            rows = conn.execute(select(hl7_outbound.c.id, hl7_outbound.c.attempts, hl7_outbound.c.next_attempt,
                                       hl7_outbound.c.payload)
                                .where(hl7_outbound.c.status == "pending", hl7_outbound.c.destination == destination)
                                .order_by(hl7_outbound.c.seq).limit(500)).all()
        if not rows or rows[0].next_attempt > now:
            return  # the head of the line is waiting for its retry time: nothing may overtake it
        sender: Sender | None = None
        try:
            for row in rows:
                payload = unseal(self.repository.codec, row.payload, "hl7_outbound", row.id)
                try:
                    sender = sender or self.connector(destination)
                    code = ack_code_of(sender.send(payload))
                    error = None if code in ("AA", "CA") else f"acknowledged {code or 'without MSA'}"
                except (OSError, ValueError) as exc:
                    error = f"{type(exc).__name__}"
                    if sender is not None:
                        sender.close()
                        sender = None
                if error is None:
                    self._set(row.id, status="sent", sent=now_us(), attempts=row.attempts + 1, last_error=None)
                    report.sent += 1
                    continue
                attempts = row.attempts + 1
                if attempts >= self.max_attempts:
                    self._set(row.id, status="failed", attempts=attempts, last_error=error)
                    report.failed += 1
                    log.error("hl7 outbound message %s to %s failed after %d attempts", row.id, destination,
                              attempts)
                else:
                    self._set(row.id, attempts=attempts, last_error=error,
                              next_attempt=now + self.delay_us(attempts))
                    report.retried += 1
                return  # order: the rest of this destination waits behind it
        finally:
            if sender is not None:
                sender.close()

    def _set(self, msg_id: str, **values: object) -> None:
        with self.repository.transaction(write=True) as conn:
            conn.execute(update(hl7_outbound).where(hl7_outbound.c.id == msg_id).values(**values))

    def retry_failed(self) -> int:
        with self.repository.transaction(write=True) as conn:
            result = conn.execute(update(hl7_outbound).where(hl7_outbound.c.status == "failed").values(
                status="pending", attempts=0, next_attempt=now_us()))
        return int(result.rowcount or 0)
