"""With the defaults (encryption, blind indexes, audit), planted PHI appears nowhere in plaintext:
not in the database file or any table, not in the logs, not in the audit store. A tampered row fails
closed with a generic OperationOutcome and a security AuditEvent, and the rest keeps working."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select, text, update

from fhir_gateway.app import create_app
from fhir_gateway.storage.tables import resource
from tests.fhir_gateway.conftest import Fhir, make_settings

FAMILY = "Zyxwvutsrqp"
GIVEN = "Quoranthelle"
MRN = "MRN-8675309-XQ"
PHONE = "555-0142-9931"
BIRTH = "1931-07-29"


def planted() -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": FAMILY, "given": [GIVEN]}],
            "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.999", "value": MRN}],
            "telecom": [{"system": "phone", "value": PHONE}], "birthDate": BIRTH,
            "address": [{"line": ["42 Quoranthelle Way"], "postalCode": "02139"}]}


def needles() -> list[bytes]:
    values = [FAMILY, GIVEN, MRN, PHONE, BIRTH, "8675309", "Quoranthelle Way"]
    return [v.encode() for v in values] + [v.lower().encode() for v in values] + [
        v.upper().encode() for v in values]


def dump_tables(engine: Any) -> bytes:
    out = []
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                out.append(repr(tuple(row)).encode())
    return b"\n".join(out)


def test_planted_phi_is_nowhere_in_plaintext(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    app = create_app(make_settings(database_url))
    fhir = Fhir(app.test_client())
    pid = fhir.create(planted())["id"]
    # it is all still findable through the API
    assert fhir.search_ids(f"Patient?name={FAMILY[:5]}") == {pid}
    assert fhir.search_ids(f"Patient?identifier=urn:oid:2.16.840.1.113883.3.999|{MRN}") == {pid}
    assert fhir.search_ids(f"Patient?phone={PHONE}") == {pid}
    assert fhir.search_ids(f"Patient?birthdate={BIRTH}&family={FAMILY}") == {pid}
    fhir.get(f"Patient/{pid}")
    fhir.get(f"Patient?name={FAMILY}&_format=json")
    services = app.extensions["telehub.fhir"]
    engine = services.repository.engine
    blob = dump_tables(engine)
    if engine.dialect.name == "sqlite":
        db = Path(engine.url.database)
        for path in (db, Path(str(db) + "-wal")):
            if path.exists():
                blob += path.read_bytes()
    logs = caplog.text.encode()
    for needle in needles():
        assert needle not in blob, f"planted value found in the database ({needle[:4]!r}…)"
        assert needle not in logs, f"planted value found in the logs ({needle[:4]!r}…)"
    with services.repository.transaction() as conn:
        assert services.audit.verify(conn).ok
        assert services.audit.count(conn) >= 6
    engine.dispose()


def test_a_swapped_body_fails_closed_and_is_audited(database_url: str) -> None:
    app = create_app(make_settings(database_url))
    fhir = Fhir(app.test_client())
    a = fhir.create(planted())["id"]
    b = fhir.create({**planted(), "name": [{"family": "Other"}]})["id"]
    services = app.extensions["telehub.fhir"]
    engine = services.repository.engine
    with engine.begin() as conn:
        body_b = conn.execute(select(resource.c.body).where(resource.c.fid == b)).scalar_one()
        conn.execute(update(resource).where(resource.c.fid == a).values(body=body_b))
    resp = fhir.get(f"Patient/{a}")
    assert resp.status_code == 500
    outcome = resp.get_json()
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "security"
    assert FAMILY not in resp.get_data(as_text=True) and a not in resp.get_data(as_text=True)
    assert fhir.get(f"Patient/{b}").status_code == 200  # the rest keeps working
    with services.repository.transaction() as conn:
        events = list(services.audit.entries(conn))
    alert = [e for e in events if e["type"]["code"] == "110113"]
    assert len(alert) == 1 and alert[0]["outcome"] == "8"
    assert alert[0]["entity"][0]["what"]["reference"] == f"Patient/{a}"
    engine.dispose()
