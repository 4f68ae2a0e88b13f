"""batch and transaction Bundles (https://hl7.org/fhir/R4/http.html#transaction)."""
from __future__ import annotations

from typing import Any

import pytest

from fhir_gateway.errors import InvalidRequest
from tests.fhir_gateway.conftest import Fhir, patient


def txn(*entries: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def post(full_url: str, resource: dict[str, Any], **request: Any) -> dict[str, Any]:
    return {"fullUrl": full_url, "resource": resource,
            "request": {"method": "POST", "url": resource["resourceType"], **request}}


def observation(subject: str, code: str = "8867-4") -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "subject": {"reference": subject},
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]}}


def test_transaction_resolves_urn_uuid_references(fhir: Fhir) -> None:
    bundle = txn(post("urn:uuid:p1", patient()), post("urn:uuid:o1", observation("urn:uuid:p1")))
    resp = fhir.post("", bundle)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    out = resp.get_json()
    assert out["type"] == "transaction-response"
    assert [e["response"]["status"] for e in out["entry"]] == ["201 Created", "201 Created"]
    pid = out["entry"][0]["resource"]["id"]
    obs = out["entry"][1]["resource"]
    assert obs["subject"]["reference"] == f"Patient/{pid}"
    assert fhir.search_ids(f"Observation?subject=Patient/{pid}") == {obs["id"]}
    assert out["entry"][0]["response"]["location"].endswith(f"Patient/{pid}/_history/1")


def test_transaction_is_atomic_when_an_entry_fails(fhir: Fhir) -> None:
    existing = fhir.create(patient())
    bundle = txn(
        post("urn:uuid:p1", patient(family="Atomic")),
        {"resource": {**existing, "gender": "female"}, "request": {"method": "PUT",
                                                                    "url": f"Patient/{existing['id']}"}},
        {"resource": {**existing, "id": existing["id"] + "x", "gender": "other"},
         "request": {"method": "PUT", "url": f"Patient/{existing['id']}x", "ifMatch": 'W/"9"'}},
    )
    resp = fhir.post("", bundle)
    assert resp.status_code == 412
    outcome = resp.get_json()
    assert "Bundle.entry[2]" in outcome["issue"][0]["expression"]
    assert fhir.search_ids("Patient?family=Atomic") == set()
    assert fhir.get(f"Patient/{existing['id']}").get_json()["gender"] == "male"


@pytest.mark.parametrize("fail_on_call", [1, 2])
def test_transaction_rolls_back_on_an_injected_storage_failure(app, fhir: Fhir, monkeypatch,  # type: ignore[no-untyped-def]
                                                               fail_on_call: int) -> None:
    """The index write fails after resource and version rows were inserted: nothing may remain."""
    existing = fhir.create(patient(family="Before"))
    writer = app.extensions["telehub.fhir"].repository.index_writer
    original = writer.write_many
    calls = {"n": 0}

    def failing_write_many(conn, items):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == fail_on_call:
            raise InvalidRequest("injected failure in the middle of the transaction")
        return original(conn, items)

    monkeypatch.setattr(writer, "write_many", failing_write_many)
    bundle = txn(*(post(f"urn:uuid:p{i}", patient(family=f"Injected{i}")) for i in range(5)),
                 {"resource": {**existing, "gender": "female"},
                  "request": {"method": "PUT", "url": f"Patient/{existing['id']}"}})
    assert fhir.post("", bundle).status_code == 400
    monkeypatch.setattr(writer, "write_many", original)
    assert fhir.search("Patient?_summary=count")["total"] == 1
    assert fhir.get("_history").get_json()["total"] == 1
    assert fhir.get(f"Patient/{existing['id']}").get_json()["gender"] == "male"
    assert fhir.search_ids("Patient?family=Before") == {existing["id"]}


def test_transaction_processes_deletes_before_creates_and_gets_last(fhir: Fhir) -> None:
    victim = fhir.create(patient(family="Victim"))
    bundle = txn(
        {"request": {"method": "GET", "url": "Patient?family=Victim"}},
        post("urn:uuid:new", patient(family="Victim")),
        {"request": {"method": "DELETE", "url": f"Patient/{victim['id']}"}},
    )
    resp = fhir.post("", bundle)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    entries = resp.get_json()["entry"]
    # the GET ran last: it sees the new Victim, not the deleted one
    found = entries[0]["resource"]
    assert found["type"] == "searchset"
    assert [e["resource"]["id"] for e in found["entry"]] == [entries[1]["resource"]["id"]]
    assert entries[2]["response"]["status"] == "204 No Content"


def test_transaction_conditional_create_and_conditional_reference(fhir: Fhir) -> None:
    ident = {"system": "http://hl7.org/fhir/sid/us-npi", "value": "999"}
    doctor = fhir.create({"resourceType": "Practitioner", "identifier": [ident]})
    bundle = txn(
        post("urn:uuid:doc", {"resourceType": "Practitioner", "identifier": [ident]},
             ifNoneExist="identifier=http://hl7.org/fhir/sid/us-npi|999"),
        post("urn:uuid:enc", {"resourceType": "Encounter", "status": "finished",
                              "class": {"code": "VR"},
                              "participant": [{"individual": {"reference": "urn:uuid:doc"}}],
                              "serviceProvider": {"reference": "Organization?identifier=urn:org|1"}}),
    )
    missing = fhir.post("", bundle)
    assert missing.status_code == 412  # the conditional reference matches nothing
    fhir.create({"resourceType": "Organization", "identifier": [{"system": "urn:org", "value": "1"}]})
    resp = fhir.post("", bundle)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    entries = resp.get_json()["entry"]
    assert entries[0]["response"]["status"] == "200 OK"
    enc = entries[1]["resource"]
    assert enc["participant"][0]["individual"]["reference"] == f"Practitioner/{doctor['id']}"
    assert enc["serviceProvider"]["reference"].startswith("Organization/")


def test_transaction_reference_to_unknown_urn_is_rejected(fhir: Fhir) -> None:
    resp = fhir.post("", txn(post("urn:uuid:o1", observation("urn:uuid:nobody"))))
    assert resp.status_code == 404
    assert fhir.search("Observation?_summary=count")["total"] == 0


def test_transaction_put_and_patch_entries(fhir: Fhir) -> None:
    import base64

    import orjson

    pid = fhir.create(patient())["id"]
    patch_doc = base64.b64encode(orjson.dumps([{"op": "replace", "path": "/gender", "value": "female"}])).decode()
    bundle = txn(
        {"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": patch_doc},
         "request": {"method": "PATCH", "url": f"Patient/{pid}"}},
        {"fullUrl": "urn:uuid:x", "resource": patient(id="fixed-id", family="Put"),
         "request": {"method": "PUT", "url": "Patient/fixed-id"}},
    )
    resp = fhir.post("", bundle)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert fhir.get(f"Patient/{pid}").get_json()["gender"] == "female"
    assert fhir.get("Patient/fixed-id").status_code == 200


def test_two_entries_on_the_same_resource_are_rejected(fhir: Fhir) -> None:
    bundle = txn(
        {"resource": patient(id="dup"), "request": {"method": "PUT", "url": "Patient/dup"}},
        {"resource": patient(id="dup", gender="female"), "request": {"method": "PUT", "url": "Patient/dup"}},
    )
    assert fhir.post("", bundle).status_code == 400


def test_batch_entries_fail_independently(fhir: Fhir) -> None:
    bundle = txn(
        post("urn:uuid:a", patient(family="BatchOk")),
        {"request": {"method": "GET", "url": "Patient/does-not-exist"}},
        post("urn:uuid:b", {"resourceType": "Patient", "birthDate": "garbage"}),
        kind="batch",
    )
    resp = fhir.post("", bundle)
    assert resp.status_code == 200
    out = resp.get_json()
    assert out["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in out["entry"]]
    assert statuses[0] == "201 Created"
    assert statuses[1] == "404"
    assert statuses[2] in ("400", "422")
    assert out["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert fhir.search_ids("Patient?family=BatchOk") != set()


@pytest.mark.parametrize("body", [
    {"resourceType": "Patient"},
    {"resourceType": "Bundle", "type": "collection"},
    {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": {"resourceType": "Patient"}}]},
    {"resourceType": "Bundle", "type": "transaction", "entry": "nope"},
])
def test_malformed_bundles_are_400(fhir: Fhir, body: dict[str, Any]) -> None:
    resp = fhir.post("", body)
    assert resp.status_code == 400
    assert resp.get_json()["resourceType"] == "OperationOutcome"


def test_transaction_referencing_a_missing_resource_is_404_and_writes_nothing(fhir: Fhir) -> None:
    resp = fhir.post("", txn(post("urn:uuid:p", patient(family="Dangling")),
                             post("urn:uuid:o", observation("Patient/not-there"))))
    assert resp.status_code == 404
    assert "Bundle.entry[1]" in resp.get_json()["issue"][0]["expression"]
    assert fhir.search_ids("Patient?family=Dangling") == set()
    deleted = fhir.create(patient())
    fhir.delete(f"Patient/{deleted['id']}")
    assert fhir.post("", txn(post("urn:uuid:o", observation(f"Patient/{deleted['id']}")))).status_code == 404
