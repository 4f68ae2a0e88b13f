"""No message lost (issue 6): SIGKILL the listener while 8 senders stream, restart it, let the
senders re-send what was not acknowledged, and find every message stored exactly once.

Exactly once is checked three ways: the inbox holds each (sender, control id) once (it is
unique on that pair, and the count must equal what was sent); the audit trail holds one
"transaction" AuditEvent per message (written in the same commit as the FHIR writes, so a
message applied twice would show twice); and the FHIR store holds one Patient per MRN.
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable

from sqlalchemy import func, select

from fhir_gateway.audit.tables import audit_log
from fhir_gateway.hl7.ack import ack_code_of
from fhir_gateway.hl7.client import MllpClient
from fhir_gateway.hl7.listen import build_ingestor
from fhir_gateway.hl7.tables import hl7_inbox
from fhir_gateway.storage.tables import resource
from tests.fhir_gateway.conftest import make_settings
from tests.fhir_gateway.hl7.conftest import Listener, adt

SENDERS = 8
PER_SENDER = 40
PATIENTS_PER_SENDER = 10
DEADLINE_S = 240


class Sender(threading.Thread):
    """Streams its messages in order; on a lost connection reconnects and re-sends the unacknowledged one."""

    def __init__(self, n: int, listener: Listener, acked: list[int]) -> None:
        super().__init__(daemon=True)
        self.n, self.listener, self.acked = n, listener, acked
        self.resent = 0
        self.error: str | None = None

    def message(self, j: int) -> bytes:
        return adt(f"S{self.n}-{j:04d}", f"P{self.n}-{j % PATIENTS_PER_SENDER}", sender=f"SND{self.n}",
                   trigger="A04" if j < PATIENTS_PER_SENDER else "A08", family=f"Fam{j}")

    def run(self) -> None:
        deadline = time.monotonic() + DEADLINE_S
        j, client, attempts = 0, None, 0
        while j < PER_SENDER and time.monotonic() < deadline:
            try:
                client = client or MllpClient("127.0.0.1", self.listener.port, timeout=30)
                attempts += 1
                code = ack_code_of(client.send(self.message(j)))
                if code != "AA":
                    self.error = f"message {j} got {code}"
                    return
                self.acked[self.n] += 1
                j, attempts = j + 1, 0
            except OSError:
                if client is not None:
                    client.close()
                client = None
                self.resent += attempts > 0
                time.sleep(0.1)
        if client is not None:
            client.close()
        if j < PER_SENDER:
            self.error = f"stopped at message {j} (deadline)"


def _run(database_url: str, listener_factory: Callable[..., Listener], workers: int = 1) -> None:
    listener = listener_factory(database_url, workers)
    listener.start()
    acked = [0] * SENDERS
    senders = [Sender(n, listener, acked) for n in range(SENDERS)]
    for s in senders:
        s.start()
    while sum(acked) < SENDERS * PER_SENDER // 3:
        time.sleep(0.02)
        assert all(s.is_alive() or s.error is None for s in senders)
    listener.kill()
    killed_at = sum(acked)
    listener.start()
    for s in senders:
        s.join(DEADLINE_S)
    listener.stop()
    assert [s.error for s in senders] == [None] * SENDERS
    assert killed_at < SENDERS * PER_SENDER
    assert sum(acked) == SENDERS * PER_SENDER
    assert sum(s.resent for s in senders) > 0  # the kill did cut messages in flight

    ingestor = build_ingestor(make_settings(database_url))
    try:
        with ingestor.services.repository.transaction() as conn:
            rows = conn.execute(select(hl7_inbox.c.sender, hl7_inbox.c.control_id).order_by(hl7_inbox.c.pk)).all()
            audited = conn.execute(select(func.count()).select_from(audit_log).where(
                audit_log.c.subtype == "transaction")).scalar_one()
            patients = conn.execute(select(func.count()).select_from(resource).where(
                resource.c.rtype == "Patient", resource.c.deleted.is_(False))).scalar_one()
    finally:
        ingestor.services.repository.engine.dispose()
    assert len(rows) == len(set(rows)) == SENDERS * PER_SENDER
    assert audited == SENDERS * PER_SENDER
    assert patients == SENDERS * PATIENTS_PER_SENDER
    per_sender: dict[str, list[str]] = defaultdict(list)
    for sender, control_id in rows:
        per_sender[sender].append(control_id)
    assert all(ids == sorted(ids) for ids in per_sender.values())  # applied in each sender's order


def test_no_message_lost_on_sqlite(sqlite_url: str, listener_factory: Callable[..., Listener]) -> None:
    _run(sqlite_url, listener_factory)


def test_no_message_lost_with_two_worker_processes(sqlite_url: str, listener_factory: Callable[..., Listener]) -> None:
    """SIGKILL hits the parent; its workers die with it (PR_SET_PDEATHSIG), so the port comes free."""
    _run(sqlite_url, listener_factory, workers=2)


def test_no_message_lost_on_postgresql(postgres_url: str, listener_factory: Callable[..., Listener]) -> None:
    _run(postgres_url, listener_factory)
