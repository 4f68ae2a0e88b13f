"""The audit trail: every PHI interaction recorded in its own transaction, hash-chained, verifiable."""
from __future__ import annotations

import os
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete, insert, select, update

from fhir_gateway.app import create_app
from fhir_gateway.audit.tables import audit_head, audit_log
from fhir_gateway.errors import InvalidRequest
from tests.fhir_gateway.conftest import Fhir, make_settings, patient


@pytest.fixture
def audited(database_url: str) -> Any:
    app = create_app(make_settings(database_url), audit_key=os.urandom(32))
    yield app
    app.extensions["telehub.fhir"].repository.engine.dispose()


def entries(app: Flask) -> list[dict[str, Any]]:
    svc = app.extensions["telehub.fhir"]
    with svc.repository.transaction() as conn:
        return list(svc.audit.entries(conn))


def verify(app: Flask) -> Any:
    svc = app.extensions["telehub.fhir"]
    with svc.repository.transaction() as conn:
        return svc.audit.verify(conn)


def test_every_interaction_is_recorded_with_who_what_and_outcome(audited: Flask) -> None:
    fhir = Fhir(audited.test_client())
    created = fhir.create(patient())
    pid = created["id"]
    fhir.get(f"Patient/{pid}")
    fhir.put(f"Patient/{pid}", {**created, "gender": "female"})
    fhir.search("Patient?family=Chalmers")
    fhir.get(f"Patient/{pid}/_history")
    fhir.get(f"Patient/{pid}/$everything")
    fhir.get("Patient/missing")
    fhir.delete(f"Patient/{pid}")
    fhir.get("metadata")  # no PHI: not audited
    events = entries(audited)
    subtypes = [e["subtype"][0]["code"] for e in events]
    assert subtypes == ["create", "read", "update", "search-type", "history-instance", "operation", "read", "delete"]
    assert [e["action"] for e in events] == ["C", "R", "U", "E", "R", "E", "R", "D"]
    assert [e["outcome"] for e in events] == ["0"] * 6 + ["4", "0"]
    search = events[3]
    patients = [x["what"]["reference"] for x in search["entity"] if x["role"]["code"] == "1"]
    assert patients == [f"Patient/{pid}"]
    query = next(x for x in search["entity"] if x["role"]["code"] == "24")
    assert "Chalmers" not in query["query"]  # the query is hashed, not stored
    agent = events[0]["agent"][0]
    assert agent["requestor"] is True and agent["network"]["address"] == "127.0.0.1"
    assert verify(audited).ok


def test_the_audit_entry_commits_with_the_change_or_not_at_all(audited: Flask, monkeypatch: Any) -> None:
    fhir = Fhir(audited.test_client())
    trail = audited.extensions["telehub.fhir"].audit
    original = trail.append

    def broken_append(conn, data, **kw):  # type: ignore[no-untyped-def]
        if data.interaction == "create":
            raise InvalidRequest("audit store unavailable")
        return original(conn, data, **kw)

    monkeypatch.setattr(trail, "append", broken_append)
    resp = fhir.post("Patient", patient(family="Unaudited"))
    assert resp.status_code == 400
    monkeypatch.setattr(trail, "append", original)
    assert fhir.search_ids("Patient?family=Unaudited") == set()  # the change rolled back with its audit


def test_a_crash_after_the_change_leaves_neither(audited: Flask, monkeypatch: Any) -> None:
    fhir = Fhir(audited.test_client())
    from fhir_gateway.audit.trail import AuditTrail

    def crash(*args, **kw):  # type: ignore[no-untyped-def]
        raise RuntimeError("process died between the audit insert and the head update")

    monkeypatch.setattr(AuditTrail, "_advance_head", crash)
    assert fhir.post("Patient", patient(family="Crashed")).status_code == 500
    monkeypatch.undo()
    assert fhir.search_ids("Patient?family=Crashed") == set()
    assert all(e["subtype"][0]["code"] != "create" for e in entries(audited))
    assert verify(audited).ok


def _tamper(app: Flask, fn: Any) -> None:
    engine = app.extensions["telehub.fhir"].repository.engine
    with engine.begin() as conn:
        fn(conn)


def _populate(app: Flask, n: int = 6) -> None:
    fhir = Fhir(app.test_client())
    for i in range(n):
        fhir.create(patient(family=f"Audit{i}"))
    assert verify(app).ok


def test_verify_detects_an_edited_entry(audited: Flask) -> None:
    _populate(audited)
    _tamper(audited, lambda c: c.execute(update(audit_log).where(audit_log.c.seq == 3).values(
        body=audited.extensions["telehub.fhir"].repository.codec.encode(
            {"resourceType": "AuditEvent", "id": "forged"}, b""))))
    report = verify(audited)
    assert not report.ok and report.problem == "edited" and report.seq == 3


def test_verify_detects_a_deleted_entry(audited: Flask) -> None:
    _populate(audited)
    _tamper(audited, lambda c: c.execute(delete(audit_log).where(audit_log.c.seq == 4)))
    report = verify(audited)
    assert not report.ok and report.problem == "deleted" and report.seq == 4


def test_verify_detects_a_deleted_tail(audited: Flask) -> None:
    _populate(audited)
    _tamper(audited, lambda c: c.execute(delete(audit_log).where(audit_log.c.seq == 6)))
    report = verify(audited)
    assert not report.ok and report.problem == "deleted"


def test_verify_detects_an_inserted_entry(audited: Flask) -> None:
    _populate(audited)

    def insert_copy(conn: Any) -> None:
        row = conn.execute(select(audit_log).where(audit_log.c.seq == 2)).one()._asdict()
        row.update(seq=7, event_id="inserted")
        conn.execute(insert(audit_log).values(**row))

    _tamper(audited, insert_copy)
    report = verify(audited)
    assert not report.ok and report.problem == "inserted" and report.seq == 7


def test_verify_detects_reordered_entries(audited: Flask) -> None:
    _populate(audited)

    def swap(conn: Any) -> None:
        a = conn.execute(select(audit_log).where(audit_log.c.seq == 2)).one()._asdict()
        b = conn.execute(select(audit_log).where(audit_log.c.seq == 3)).one()._asdict()
        conn.execute(delete(audit_log).where(audit_log.c.seq.in_([2, 3])))
        conn.execute(insert(audit_log).values(**{**b, "seq": 2}))
        conn.execute(insert(audit_log).values(**{**a, "seq": 3}))

    _tamper(audited, swap)
    report = verify(audited)
    assert not report.ok and report.seq == 2 and report.problem in ("edited", "reordered")


def test_audit_events_are_read_only_and_searchable(audited: Flask) -> None:
    fhir = Fhir(audited.test_client())
    pid = fhir.create(patient())["id"]
    fhir.get(f"Patient/{pid}")
    found = fhir.search(f"AuditEvent?patient={pid}&_sort=date")
    assert [e["resource"]["subtype"][0]["code"] for e in found["entry"]] == ["create", "read"]
    event = found["entry"][0]["resource"]
    assert fhir.put(f"AuditEvent/{event['id']}", event).status_code == 405
    assert fhir.delete(f"AuditEvent/{event['id']}").status_code == 405
    assert fhir.post("AuditEvent", {**event, "id": None}).status_code == 405
    assert verify(audited).ok


def test_denied_and_failed_requests_are_audited(database_url: str) -> None:
    from fhir_gateway.access import DenyTypes

    app = create_app(make_settings(database_url), audit_key=os.urandom(32), access=DenyTypes("Observation"))
    fhir = Fhir(app.test_client())
    assert fhir.get("Observation?code=1").status_code == 403
    assert fhir.post("Patient", raw=b"{broken").status_code == 400
    events = entries(app)
    assert events[0]["type"]["code"] == "110113" and events[0]["outcome"] == "4"
    assert events[1]["outcome"] == "4"
    assert verify(app).ok
    app.extensions["telehub.fhir"].repository.engine.dispose()


def test_purge_refuses_young_entries_and_audits_itself(audited: Flask) -> None:
    from fhir_gateway.access import RequestContext
    from fhir_gateway.audit.events import AuditInput

    _populate(audited, 3)
    svc = audited.extensions["telehub.fhir"]
    import time

    now = time.time_ns() // 1000
    with pytest.raises(InvalidRequest), svc.repository.transaction(write=True) as conn:
        svc.audit.purge(conn, now, AuditInput("security", 200, RequestContext(user="admin")), now=now)
    seven_years_on = now + int(7 * 365.25 * 24 * 3600 * 1_000_000)
    with svc.repository.transaction(write=True) as conn:
        removed = svc.audit.purge(conn, now + 1, AuditInput("security", 200, RequestContext(user="admin")),
                                  now=seven_years_on)
    assert removed == 3
    remaining = entries(audited)
    assert len(remaining) == 1 and "purge removed 3" in remaining[0]["outcomeDesc"]
    assert verify(audited).ok
    with svc.repository.transaction() as conn:
        head = conn.execute(select(audit_head)).one()
    assert head.base_seq == 3
