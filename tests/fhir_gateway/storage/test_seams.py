"""The seams the security issue builds on: body codec, index-value hasher, access policy.

Each is exercised with a real, non-identity implementation to prove every read
and write passes through it.
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Any

from sqlalchemy import select

from fhir_gateway.access import DenyTypes
from fhir_gateway.app import create_app
from fhir_gateway.storage.codec import CompressingCodec
from fhir_gateway.storage.tables import idx_string, idx_token, resource
from tests.fhir_gateway.conftest import Fhir, make_settings, patient


class RecordingCodec(CompressingCodec):
    """Compresses, and counts calls, so the test can see every body went through the codec."""

    def __init__(self) -> None:
        super().__init__()
        self.encoded = 0
        self.decoded = 0

    def encode(self, res: dict[str, Any], aad: bytes) -> bytes:
        self.encoded += 1
        return super().encode(res, aad)

    def decode(self, blob: bytes, aad: bytes) -> dict[str, Any]:
        self.decoded += 1
        return super().decode(blob, aad)


class HmacHasher:
    """A blind-index hasher: identifying values are stored as keyed HMACs (exact match only)."""

    BLIND = {"identifier", "family", "given", "name", "phone", "email", "telecom"}

    def __init__(self, key: bytes) -> None:
        self.key = key

    def protect(self, rtype: str, param: str, value: str) -> str:
        if param.split("$")[0] not in self.BLIND:
            return value
        return hmac.new(self.key, f"{rtype}|{param}|{value}".encode(), hashlib.sha256).hexdigest()


def test_every_body_goes_through_the_codec(database_url: str) -> None:
    codec = RecordingCodec()
    app = create_app(make_settings(database_url, audit=False), codec=codec)
    fhir = Fhir(app.test_client())
    created = fhir.create(patient())
    fhir.put(f"Patient/{created['id']}", {**created, "gender": "female"})
    assert codec.encoded == 2
    assert fhir.get(f"Patient/{created['id']}").get_json()["gender"] == "female"
    assert fhir.get(f"Patient/{created['id']}/_history/1").get_json()["gender"] == "male"
    assert fhir.search_ids("Patient?gender=female") == {created["id"]}
    assert codec.decoded >= 3
    engine = app.extensions["telehub.fhir"].repository.engine
    with engine.connect() as conn:
        blob = conn.execute(select(resource.c.body)).scalar_one()
    assert blob.startswith(b"Z1") and b"Chalmers" not in blob  # stored compressed, not as plain JSON
    engine.dispose()


def test_hasher_protects_index_values_and_search_still_matches(database_url: str) -> None:
    app = create_app(make_settings(database_url), hasher=HmacHasher(b"k" * 32))
    fhir = Fhir(app.test_client())
    ident = {"system": "urn:mrn", "value": "MRN-77"}
    created = fhir.create(patient(family="Blindman", identifier=[ident]))
    assert fhir.search_ids("Patient?identifier=urn:mrn|MRN-77") == {created["id"]}
    assert fhir.search_ids("Patient?family:exact=Blindman") == {created["id"]}
    assert fhir.search_ids("Patient?identifier=urn:mrn|MRN-78") == set()
    engine = app.extensions["telehub.fhir"].repository.engine
    with engine.connect() as conn:
        codes = set(conn.execute(select(idx_token.c.code).where(idx_token.c.param == "identifier")).scalars())
        strings = set(conn.execute(select(idx_string.c.value).where(idx_string.c.param == "family")).scalars())
    assert "MRN-77" not in codes and "blindman" not in strings
    engine.dispose()


def test_access_policy_is_asked_for_every_interaction_and_result(database_url: str) -> None:
    open_app = create_app(make_settings(database_url))
    open_fhir = Fhir(open_app.test_client())
    pid = open_fhir.create(patient())["id"]
    open_fhir.create({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                      "subject": {"reference": f"Patient/{pid}"}})
    locked = create_app(make_settings(database_url), access=DenyTypes("Observation"))
    fhir = Fhir(locked.test_client())
    assert fhir.get("Observation?status=final").status_code == 403
    assert fhir.post("Observation", {"resourceType": "Observation", "status": "final",
                                     "code": {"text": "x"}}).status_code == 403
    assert fhir.get(f"Patient/{pid}").status_code == 200
    everything = fhir.search(f"Patient/{pid}/$everything")
    assert {e["resource"]["resourceType"] for e in everything["entry"]} == {"Patient"}
    revinclude = fhir.search(f"Patient?_id={pid}&_revinclude=Observation:subject")
    assert {e["resource"]["resourceType"] for e in revinclude["entry"]} == {"Patient"}
    for app in (open_app, locked):
        app.extensions["telehub.fhir"].repository.engine.dispose()
