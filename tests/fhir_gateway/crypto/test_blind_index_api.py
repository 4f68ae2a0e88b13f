"""Blind indexes end to end, on SQLite and PostgreSQL: identifying values planted through the API stay searchable
(exact and prefix), what a digest cannot answer is refused with an OperationOutcome, and no index table — nor,
with an encrypting body codec, any byte of the database — holds them in plaintext."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Flask
from sqlalchemy import MetaData, select
from sqlalchemy.engine import Engine, make_url

from fhir_gateway.app import create_app
from fhir_gateway.crypto.blind_index import BlindIndexHasher, load_policy
from fhir_gateway.search.values import date_range, normalize_string
from fhir_gateway.storage.codec import CompressingCodec
from fhir_gateway.storage.tables import INDEX_TABLES, idx_date, idx_string, idx_token
from tests.fhir_gateway.conftest import Fhir, make_settings

KEY = bytes(range(32))
MRN_SYSTEM = "http://hospital.example/mrn"
FAMILY, GIVEN = "Quellmorvant", "Ysoldine"
MRN, SSN = "MRN-48151623", "999-48-1516"
PHONE, EMAIL = "555-0142-9876", "ysoldine.q@example.org"
BIRTH = "1931-07-19"
LINE, CITY, POSTAL = "77 Thistlewaite Crescent", "Brackenmoor", "QX9 7ZT"
PLANTED = [FAMILY, GIVEN, f"{GIVEN} {FAMILY}", MRN, SSN, PHONE, EMAIL, BIRTH, LINE, CITY, POSTAL, "Thistlewaite"]


class AesCodec(CompressingCodec):
    """Stands in for the envelope codec (compress, then AES-256-GCM bound to the row): the raw file can be scanned."""

    def __init__(self) -> None:
        super().__init__()
        self.aead = AESGCM(bytes(32))

    def encode(self, resource: dict[str, Any], aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self.aead.encrypt(nonce, super().encode(resource, aad), aad)

    def decode(self, blob: bytes, aad: bytes) -> dict[str, Any]:
        return super().decode(self.aead.decrypt(blob[:12], blob[12:], aad), aad)


def planted_patient(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": MRN_SYSTEM, "value": MRN, "type": {"text": "Medical record number"}},
                       {"system": "http://hl7.org/fhir/sid/us-ssn", "value": SSN}],
        "name": [{"family": FAMILY, "given": [GIVEN]}],
        "telecom": [{"system": "phone", "value": PHONE}, {"system": "email", "value": EMAIL}],
        "gender": "female",
        "birthDate": BIRTH,
        "address": [{"line": [LINE], "city": CITY, "state": "MA", "postalCode": POSTAL, "country": "US"}],
    }
    body.update(extra)
    return body


@pytest.fixture
def blind_app(database_url: str) -> Iterator[Flask]:
    app = create_app(make_settings(database_url), hasher=BlindIndexHasher(KEY, load_policy()), codec=AesCodec())
    yield app
    app.extensions["telehub.fhir"].repository.engine.dispose()


@pytest.fixture
def fhir(blind_app: Flask) -> Fhir:
    return Fhir(blind_app.test_client())


@pytest.fixture
def planted(fhir: Fhir) -> dict[str, str]:
    pid = fhir.create(planted_patient())["id"]
    other = fhir.create({"resourceType": "Patient", "name": [{"family": "Quelling", "given": ["Amos"]}],
                         "gender": "male", "birthDate": "1931-07-20",
                         "identifier": [{"system": MRN_SYSTEM, "value": "MRN-1"}]})["id"]
    obs = fhir.create({"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
                       "subject": {"reference": f"Patient/{pid}",
                                   "identifier": {"system": MRN_SYSTEM, "value": MRN}}})["id"]
    org = fhir.create({"resourceType": "Organization", "name": "Quellmoss Clinic"})["id"]
    return {"patient": pid, "other": other, "obs": obs, "org": org}


def refused(fhir: Fhir, query: str, param: str) -> dict[str, Any]:
    resp = fhir.get(query)
    assert resp.status_code == 400, (query, resp.get_data(as_text=True))
    outcome: dict[str, Any] = resp.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    issue = outcome["issue"][0]
    assert f"'{param}' holds identifying data and is stored as a blind index" in issue["diagnostics"]
    for value in PLANTED:  # the error names the parameter, never the value
        assert value.lower() not in resp.get_data(as_text=True).lower()
    return outcome


def test_blinded_values_stay_searchable(fhir: Fhir, planted: dict[str, str]) -> None:
    pid, other = planted["patient"], planted["other"]
    found = {
        "Patient?name=quell": {pid, other},
        "Patient?name=Quellm": {pid},
        "Patient?name=q": {pid, other},
        f"Patient?name={FAMILY}": {pid},
        "Patient?name=YSOL": {pid},
        f"Patient?name={GIVEN} {FAMILY[:6]}": {pid},  # the "given family" row
        "Patient?family=QUELLMORVANT": {pid},
        f"Patient?family:exact={FAMILY}": {pid},
        f"Patient?given:exact={GIVEN}": {pid},
        f"Patient?identifier={MRN_SYSTEM}|{MRN}": {pid},
        f"Patient?identifier={MRN}": {pid},
        f"Patient?identifier=http://hl7.org/fhir/sid/us-ssn|{SSN}": {pid},
        f"Patient?identifier={MRN_SYSTEM}|": {pid, other},
        f"Patient?phone={PHONE}": {pid},
        f"Patient?telecom=phone|{PHONE}": {pid},
        f"Patient?email={EMAIL}": {pid},
        "Patient?birthdate=1931": {pid, other},
        "Patient?birthdate=1931-07": {pid, other},
        f"Patient?birthdate={BIRTH}": {pid},
        f"Patient?birthdate=eq{BIRTH}": {pid},
        f"Patient?birthdate={BIRTH},1931-07-20": {pid, other},
        "Patient?address-postalcode=qx9": {pid},
        f"Patient?address-postalcode={POSTAL}": {pid},
        "Patient?address=77 thistle": {pid},
        "Patient?address=bracken": {pid},
        "Patient?address=MA": {pid},  # the state is part of the blinded address
        "Patient?address-city=Brackenmoor": {pid},
        "Patient?address-state=MA": {pid},  # not blinded
        "Patient?birthdate:missing=false": {pid, other},
        f"Patient?identifier:not={MRN_SYSTEM}|{MRN}": {other},
        f"Patient?identifier:not={MRN_SYSTEM}|{MRN}&name=quell": {other},
        # US Core Patient searches
        f"Patient?birthdate={BIRTH}&name=quellmor": {pid},
        f"Patient?birthdate={BIRTH}&family={FAMILY}": {pid},
        "Patient?gender=female&name=quell": {pid},
        "Patient?gender=male&name=quell": {other},
        "Patient?family=quell&gender=female": {pid},
        # reference identifiers, chains and reverse chains reach blinded parameters too
        f"Observation?subject:identifier={MRN_SYSTEM}|{MRN}": {planted["obs"]},
        f"Observation?patient:identifier={MRN}": {planted["obs"]},
        "Observation?subject:Patient.name=quellm": {planted["obs"]},
        f"Observation?patient.birthdate={BIRTH}": {planted["obs"]},
        "Patient?_has:Observation:subject:status=final&name=quell": {pid},
        # an Organization name is not blinded: prefix and :contains as before
        "Organization?name=quellmoss cl": {planted["org"]},
        "Organization?name:contains=clinic": {planted["org"]},
    }
    for query, expected in found.items():
        assert fhir.search_ids(query) == expected, query
    nothing = [
        "Patient?name=uellm", "Patient?name=quellmorvantx", "Patient?name=ysoldinex",
        "Patient?family:exact=quellmorvant", "Patient?family:exact=Quellm",
        f"Patient?identifier={MRN_SYSTEM}|MRN-48151624", f"Patient?identifier=http://other|{MRN}",
        f"Patient?identifier=http://hl7.org/fhir/sid/us-ssn|{MRN}", f"Patient?identifier=|{MRN}",
        "Patient?phone=555-0142-9877", f"Patient?email={EMAIL.upper()}", f"Patient?phone={EMAIL}",
        "Patient?birthdate=1932", "Patient?birthdate=1931-08", "Patient?birthdate=1931-07-18",
        "Patient?address-postalcode=qx8", "Patient?address=thistle", "Patient?address-city=moor",
        "Patient?birthdate:missing=true", f"Observation?subject:identifier={MRN_SYSTEM}|MRN-1",
        "Observation?patient.birthdate=1931-07-20",
    ]
    for query in nothing:
        assert fhir.search_ids(query) == set(), query


def test_what_a_blind_index_cannot_answer_is_refused(fhir: Fhir, planted: dict[str, str]) -> None:
    refused(fhir, "Patient?name:contains=ellm", "name")
    refused(fhir, "Patient?family:contains=ellm", "family")
    refused(fhir, "Patient?address:contains=thistle", "address")
    for prefix in ("gt", "lt", "ge", "le", "sa", "eb", "ap", "ne"):
        refused(fhir, f"Patient?birthdate={prefix}1970", "birthdate")
    refused(fhir, "Patient?birthdate=1931-07-19T10:00:00Z", "birthdate")
    refused(fhir, "Patient?identifier:text=medical", "identifier")
    refused(fhir, "Patient?_sort=birthdate", "birthdate")
    refused(fhir, "Patient?_sort=-family&name=quell", "family")
    refused(fhir, "Observation?patient.birthdate=gt1930", "birthdate")
    # phonetic stays refused (and is not even stored)
    assert fhir.get("Patient?phonetic=quell").status_code == 400
    # not blinded: sorting and ranges as before
    assert fhir.search_ids("Patient?_sort=gender&gender=female") == {planted["patient"]}
    assert fhir.search_ids("Organization?_sort=name") == {planted["org"]}


def test_updates_deletes_and_conditional_creates_use_the_blind_index(fhir: Fhir, planted: dict[str, str]) -> None:
    pid = planted["patient"]
    resp = fhir.post("Patient", planted_patient(), headers={"If-None-Exist": f"identifier={MRN_SYSTEM}|{MRN}"})
    assert resp.status_code == 200 and resp.get_json()["id"] == pid
    body = fhir.get(f"Patient/{pid}").get_json()
    body["name"] = [{"family": "Vantreslow", "given": [GIVEN]}]
    body["birthDate"] = "1931-07"
    assert fhir.put(f"Patient/{pid}", body).status_code == 200
    assert fhir.search_ids("Patient?name=quellm") == set()
    assert fhir.search_ids("Patient?family=vantr") == {pid}
    assert fhir.search_ids(f"Patient?birthdate={BIRTH}") == set()
    assert fhir.search_ids("Patient?birthdate=1931-07") == {pid, planted["other"]}
    assert fhir.delete(f"Patient/{pid}").status_code in (200, 204)
    assert fhir.search_ids(f"Patient?identifier={MRN}") == set()


def test_paging_over_a_blinded_prefix_is_exact(fhir: Fhir) -> None:
    ids = {fhir.create({"resourceType": "Patient", "name": [{"family": f"Pagewright{i}"}]})["id"] for i in range(5)}
    fhir.create({"resourceType": "Patient", "name": [{"family": "Pagewrong"}]})
    seen: list[str] = []
    bundle = fhir.search("Patient?name=pagewri&_count=2&_total=accurate")
    assert bundle["total"] == 5
    while True:
        seen += [e["resource"]["id"] for e in bundle.get("entry", [])]
        nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not nxt:
            break
        bundle = fhir.search(nxt[0])
    assert sorted(seen) == sorted(ids)


def _forms(value: str) -> set[str]:
    return {value, value.lower(), value.upper(), value.casefold(), normalize_string(value)}


TEXT_FORMS = sorted({f.lower() for v in PLANTED for f in _forms(v)})


def plaintext_hits(engine: Engine) -> list[str]:
    """Every table of the database, index or not, cell by cell: where a planted value (any form) appears."""
    low, high = date_range(BIRTH)
    hits: list[str] = []
    with engine.connect() as conn:
        meta = MetaData()
        meta.reflect(conn)
        assert {t.name for t in INDEX_TABLES.values()} <= set(meta.tables)
        cells = 0
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                for cell in row:
                    cells += 1
                    if isinstance(cell, str):
                        hits += [f"{table.name}: {f}" for f in TEXT_FORMS if f in cell.lower()]
                    elif isinstance(cell, bytes | memoryview):
                        raw = bytes(cell).lower()
                        hits += [f"{table.name}: {f}" for f in TEXT_FORMS if f.encode() in raw]
                    elif isinstance(cell, int) and not isinstance(cell, bool) and cell in (low, high):
                        hits.append(f"{table.name}: birth date range")
        assert cells > 100
    return hits


def file_hits(engine: Engine) -> list[str]:
    """The raw bytes of a SQLite database (and any -wal/-journal beside it), after closing every connection."""
    engine.dispose()
    path = Path(make_url(str(engine.url)).database or "")
    files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
    assert files
    hits: list[str] = []
    for file in files:
        raw = file.read_bytes().lower()
        hits += [f"{file.name}: {f}" for f in TEXT_FORMS if f.encode() in raw or f.encode("utf-16-le") in raw]
    return hits


def test_no_planted_value_is_stored_in_plaintext(blind_app: Flask, fhir: Fhir, planted: dict[str, str]) -> None:
    engine = blind_app.extensions["telehub.fhir"].repository.engine
    with engine.connect() as conn:
        # blinded dates leave no range rows; blinded strings and tokens keep no plaintext in exact/text
        assert conn.execute(select(idx_date).where(idx_date.c.param == "birthdate")).all() == []
        assert not conn.execute(select(idx_string.c.exact).where(
            idx_string.c.param == "family", idx_string.c.exact == FAMILY)).all()
        assert all(t is None for t in conn.execute(select(idx_token.c.text).where(
            idx_token.c.param == "identifier", idx_token.c.rtype == "Patient")).scalars())
        assert not conn.execute(select(idx_string).where(idx_string.c.param == "phonetic",
                                                         idx_string.c.rtype == "Patient")).all()
        # prefix rows: one per normalised prefix of each family name
        family_rows = conn.execute(select(idx_string.c.value).where(idx_string.c.param == "family")).scalars().all()
        assert len(family_rows) == len("quellmorvant") + len("quelling")
    assert plaintext_hits(engine) == []
    if engine.dialect.name == "sqlite":
        assert file_hits(engine) == []


def test_the_scan_would_see_plaintext_index_values(sqlite_url: str) -> None:
    """Control: the same scan finds the planted values when the index is not blinded (bodies still encrypted)."""
    app = create_app(make_settings(sqlite_url, blind_indexes=False), codec=AesCodec())
    fhir = Fhir(app.test_client())
    fhir.create(planted_patient())
    fhir.create({"resourceType": "Organization", "name": "Filler"})
    engine = app.extensions["telehub.fhir"].repository.engine
    hits = plaintext_hits(engine)
    for value in (FAMILY, GIVEN, MRN, SSN, PHONE, EMAIL, LINE, POSTAL):
        assert any(h.endswith(normalize_string(value)) or h.endswith(value.lower()) for h in hits), value
    assert "idx_date: birth date range" in hits
    assert any(FAMILY.lower() in h for h in file_hits(engine))
