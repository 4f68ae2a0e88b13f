"""The ingestor: AA only after commit, duplicates not re-applied, refusals kept byte for byte."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select, update

from fhir_gateway.audit.tables import audit_log
from fhir_gateway.hl7.ingest import Ingestor
from fhir_gateway.hl7.replay import replay
from fhir_gateway.hl7.sealing import unseal
from fhir_gateway.hl7.tables import hl7_dead_letter, hl7_inbox
from fhir_gateway.storage.tables import resource
from tests.fhir_gateway.hl7.conftest import adt


def _count(ing: Ingestor, query: Any) -> int:
    with ing.services.repository.transaction() as conn:
        return int(conn.execute(query).scalar_one())


def _patients(ing: Ingestor) -> int:
    return _count(ing, select(func.count()).select_from(resource).where(resource.c.rtype == "Patient",
                                                                        resource.c.deleted.is_(False)))


def _transactions_audited(ing: Ingestor) -> int:
    return _count(ing, select(func.count()).select_from(audit_log).where(audit_log.c.subtype == "transaction"))


def test_a_message_is_applied_audited_and_kept(ingestor: Ingestor) -> None:
    raw = adt("C-1", "M1")
    outcome = ingestor.handle(raw, "127.0.0.1")
    assert outcome.code == "AA" and b"MSA|AA|C-1" in outcome.ack
    assert _patients(ingestor) == 1
    assert _transactions_audited(ingestor) == 1
    with ingestor.services.repository.transaction() as conn:
        row = conn.execute(select(hl7_inbox)).one()
    assert (row.sender, row.control_id, row.event) == ("EHR|CLINIC", "C-1", "ADT^A04")
    assert row.raw != raw  # sealed at rest
    assert unseal(ingestor.services.repository.codec, row.raw, "hl7_inbox", "EHR|CLINIC/C-1") == raw


def test_a_duplicate_control_id_is_acknowledged_without_reapplying(ingestor: Ingestor) -> None:
    raw = adt("C-1", "M1")
    assert ingestor.handle(raw).code == "AA"
    again = ingestor.handle(raw)
    assert again.code == "AA" and again.duplicate
    assert _transactions_audited(ingestor) == 1
    assert _count(ingestor, select(func.count()).select_from(hl7_inbox)) == 1


def test_control_ids_are_per_sender(sqlite_ingestor: Ingestor) -> None:
    assert sqlite_ingestor.handle(adt("1", "M1", sender="LAB")).code == "AA"
    second = sqlite_ingestor.handle(adt("1", "M2", sender="RIS"))
    assert second.code == "AA" and not second.duplicate
    assert _patients(sqlite_ingestor) == 2


def test_a_reused_control_id_with_other_content_is_refused(sqlite_ingestor: Ingestor) -> None:
    assert sqlite_ingestor.handle(adt("1", "M1")).code == "AA"
    outcome = sqlite_ingestor.handle(adt("1", "M1", family="Other"))
    assert outcome.code == "AR" and b"ERR||MSH^1^10|205^" in outcome.ack
    assert _patients(sqlite_ingestor) == 1


@pytest.mark.parametrize(("raw", "code", "err"), [
    (b"not hl7 at all", "AR", b"|100^"),
    (b"MSH|^~\\&|EHR|CLINIC|||20260101||ZZZ^Z01|C-9|P|2.5.1\r", "AR", b"|200^"),
    (b"MSH|^~\\&|EHR|CLINIC|||20260101||ADT^A04^ADT_A01|C-8|P|2.5.1\rEVN|A04\r", "AE", b"|101^"),
])
def test_refused_messages_are_dead_lettered_byte_for_byte(sqlite_ingestor: Ingestor, raw: bytes, code: str,
                                                          err: bytes) -> None:
    outcome = sqlite_ingestor.handle(raw)
    assert outcome.code == code and err in outcome.ack
    assert outcome.dead_letter is not None
    with sqlite_ingestor.services.repository.transaction() as conn:
        row = conn.execute(select(hl7_dead_letter)).one()
    assert row.ack_code == code and row.status == "open"
    assert unseal(sqlite_ingestor.services.repository.codec, row.raw, "hl7_dead_letter", row.id) == raw
    assert _count(sqlite_ingestor, select(func.count()).select_from(hl7_inbox)) == 0


def test_a_bundle_the_store_refuses_is_dead_lettered_and_rolled_back(sqlite_ingestor: Ingestor) -> None:
    merge = (b"MSH|^~\\&|EHR|CLINIC|||20260101||ADT^A40^ADT_A39|C-7|P|2.5.1\rEVN|A40\r"
             b"PID|1||KEEP^^^CLINIC&1.2.3&ISO^MR||Doe^Jane\rMRG|NOBODY^^^CLINIC&1.2.3&ISO^MR\r")
    outcome = sqlite_ingestor.handle(merge)
    assert outcome.code == "AE" and b"|207^" in outcome.ack
    assert b"404" in outcome.ack and b"NOBODY" not in outcome.ack
    assert _patients(sqlite_ingestor) == 0  # the survivor's PUT was rolled back with the failed PATCH
    assert _count(sqlite_ingestor, select(func.count()).select_from(hl7_inbox)) == 0


def test_replay_applies_a_dead_letter_once_the_cause_is_fixed(sqlite_ingestor: Ingestor) -> None:
    merge = (b"MSH|^~\\&|EHR|CLINIC|||20260101||ADT^A40^ADT_A39|C-7|P|2.5.1\rEVN|A40\r"
             b"PID|1||KEEP^^^CLINIC&1.2.3&ISO^MR||Doe^Jane\rMRG|GONE^^^CLINIC&1.2.3&ISO^MR\r")
    assert sqlite_ingestor.handle(merge).code == "AE"
    assert replay(sqlite_ingestor).counts == {"still failing": 1}
    assert sqlite_ingestor.handle(adt("C-1", "GONE")).code == "AA"  # the retired patient now exists
    assert replay(sqlite_ingestor).counts == {"replayed": 1}
    with sqlite_ingestor.services.repository.transaction() as conn:
        row = conn.execute(select(hl7_dead_letter)).one()
        inbox = conn.execute(select(hl7_inbox.c.control_id).order_by(hl7_inbox.c.pk)).scalars().all()
    assert (row.status, row.attempts) == ("replayed", 3)
    assert inbox == ["C-1", "C-7"]
    assert replay(sqlite_ingestor).summary() == "no open dead letters"


def test_replay_supersedes_a_dead_letter_the_sender_got_through(sqlite_ingestor: Ingestor) -> None:
    outcome = sqlite_ingestor.handle(adt("C-5", "M5"))
    assert outcome.code == "AA"
    bad = sqlite_ingestor.handle(b"MSH|^~\\&|EHR|CLINIC|||20260101||ADT^A04^ADT_A01|C-5|P|2.5.1\rEVN|A04\r")
    assert bad.code == "AE"
    assert replay(sqlite_ingestor).counts == {"superseded": 1}


def test_messages_of_one_sender_apply_in_order(sqlite_ingestor: Ingestor) -> None:
    for n, family in enumerate(["First", "Second", "Third"]):
        assert sqlite_ingestor.handle(adt(f"C-{n}", "M1", trigger="A08" if n else "A04", family=family)).code == "AA"
    svc = sqlite_ingestor.services
    with svc.repository.transaction() as conn:
        found = svc.search.find(conn, "Patient", [("identifier", "M1")], limit=2)
        assert len(found) == 1
        stored = svc.repository.read(conn, "Patient", found[0].fid)
        assert stored is not None and stored.resource is not None
        assert stored.resource["name"][0]["family"] == "Third"


def test_a_database_failure_gives_no_ack(sqlite_ingestor: Ingestor, monkeypatch: pytest.MonkeyPatch) -> None:
    """The listener closes the connection on an unexpected error; the ingestor must not swallow it."""
    def boom(*_a: Any, **_k: Any) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr("fhir_gateway.hl7.ingest.process_bundle", boom)
    with pytest.raises(OSError):
        sqlite_ingestor.handle(adt("C-1", "M1"))
    monkeypatch.undo()
    assert _count(sqlite_ingestor, select(func.count()).select_from(hl7_inbox)) == 0
    with sqlite_ingestor.services.repository.transaction(write=True) as conn:  # still usable
        conn.execute(update(hl7_inbox).values(event="x"))
