"""The outbound queue: in order per destination, retried with back-off, failed after max attempts."""
from __future__ import annotations

from sqlalchemy import select

from fhir_gateway.hl7.ingest import Ingestor, now_us
from fhir_gateway.hl7.outbound_queue import OutboundQueue
from fhir_gateway.hl7.tables import hl7_outbound
from tests.fhir_gateway.hl7.conftest import adt
from tests.fhir_gateway.hl7.test_server import Running

ACK = b"MSH|^~\\&|R|R|T|T|20260101||ACK^A04^ACK|1|P|2.5.1\rMSA|{code}|X\r"


class FakeSender:
    """Answers each message with the next scripted ACK code, or raises for "down"."""

    def __init__(self, script: list[str], log: list[bytes]) -> None:
        self.script, self.log = script, log

    def send(self, payload: bytes) -> bytes:
        code = self.script.pop(0)
        if code == "down":
            raise ConnectionRefusedError
        self.log.append(payload)
        return ACK.replace(b"{code}", code.encode())

    def close(self) -> None:
        pass


def _queue(ing: Ingestor, script: list[str], log: list[bytes]) -> OutboundQueue:
    return OutboundQueue(ing.services.repository, connector=lambda _dest: FakeSender(script, log),  # type: ignore[arg-type,return-value]
                         max_attempts=3, base_delay_s=1.0)


def _enqueue(queue: OutboundQueue, *payloads: bytes, destination: str = "127.0.0.1:2575") -> None:
    with queue.repository.transaction(write=True) as conn:
        for n, payload in enumerate(payloads):
            queue.enqueue(conn, destination, payload, event="ADT^A04", control_id=f"C{n}")


def _statuses(queue: OutboundQueue) -> list[tuple[str, int]]:
    with queue.repository.transaction() as conn:
        return [(r.status, r.attempts) for r in conn.execute(
            select(hl7_outbound.c.status, hl7_outbound.c.attempts).order_by(hl7_outbound.c.seq))]


def test_delivered_in_order(sqlite_ingestor: Ingestor) -> None:
    log: list[bytes] = []
    queue = _queue(sqlite_ingestor, ["AA", "AA", "AA"], log)
    _enqueue(queue, b"m1", b"m2", b"m3")
    report = queue.deliver_due()
    assert (report.sent, report.retried) == (3, 0)
    assert log == [b"m1", b"m2", b"m3"]
    assert _statuses(queue) == [("sent", 1)] * 3


def test_a_failure_holds_back_later_messages_until_its_retry(sqlite_ingestor: Ingestor) -> None:
    log: list[bytes] = []
    script = ["down", "AE", "AA", "AA"]
    queue = _queue(sqlite_ingestor, script, log)
    _enqueue(queue, b"m1", b"m2")
    start = now_us()
    assert queue.deliver_due(start).retried == 1
    assert queue.deliver_due(start + 10_000).sent == 0  # m1 waits for its back-off; m2 may not overtake it
    assert queue.deliver_due(start + 1_100_000).retried == 1  # AE: retried, after 2 s this time
    assert queue.deliver_due(start + 2_000_000).sent == 0
    report = queue.deliver_due(start + 4_000_000)
    assert report.sent == 2 and log == [b"m1", b"m1", b"m2"]


def test_failed_after_max_attempts_then_retried_by_the_operator(sqlite_ingestor: Ingestor) -> None:
    log: list[bytes] = []
    queue = _queue(sqlite_ingestor, ["down", "down", "down", "AA"], log)
    _enqueue(queue, b"m1")
    t = now_us()
    for step in range(3):
        queue.deliver_due(t + step * 10_000_000)
    assert _statuses(queue) == [("failed", 3)]
    assert queue.retry_failed() == 1
    assert queue.deliver_due().sent == 1


def test_delivered_to_a_real_listener(sqlite_ingestor: Ingestor, sqlite_url: str) -> None:
    from fhir_gateway.hl7.server import ListenerConfig

    running = Running(sqlite_ingestor, ListenerConfig(port=0, threads=2))
    try:
        queue = OutboundQueue(sqlite_ingestor.services.repository)
        _enqueue(queue, adt("O-1", "M1"), adt("O-2", "M2"), destination=f"127.0.0.1:{running.server.port}")
        assert queue.deliver_due().sent == 2
        assert running.server.counts["AA"] == 2
    finally:
        running.close()
