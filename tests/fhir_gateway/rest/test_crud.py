"""Create, read, vread, update, delete and their HTTP semantics (https://hl7.org/fhir/R4/http.html)."""
from __future__ import annotations

import orjson

from fhir_gateway.app import create_app
from tests.fhir_gateway.conftest import BASE, Fhir, make_settings, patient


def test_create_assigns_id_version_and_location(fhir: Fhir) -> None:
    resp = fhir.post("Patient", patient(id="client-chosen"))
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["id"] != "client-chosen"  # create ignores a client id (R4 http.html#create)
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"].endswith("+00:00")
    assert resp.headers["ETag"] == 'W/"1"'
    assert resp.headers["Location"] == f"{BASE}/Patient/{body['id']}/_history/1"
    assert resp.headers["Content-Type"].startswith("application/fhir+json")
    assert "Last-Modified" in resp.headers


def test_read_returns_what_was_written(fhir: Fhir) -> None:
    created = fhir.create(patient())
    resp = fhir.get(f"Patient/{created['id']}")
    assert resp.status_code == 200
    assert resp.get_json() == created
    assert resp.headers["ETag"] == 'W/"1"'


def test_update_versions_and_vread_keeps_old_versions(fhir: Fhir) -> None:
    created = fhir.create(patient())
    pid = created["id"]
    changed = {**created, "gender": "female"}
    resp = fhir.put(f"Patient/{pid}", changed)
    assert resp.status_code == 200
    assert resp.get_json()["meta"]["versionId"] == "2"
    assert resp.headers["ETag"] == 'W/"2"'
    assert fhir.get(f"Patient/{pid}/_history/1").get_json()["gender"] == "male"
    assert fhir.get(f"Patient/{pid}/_history/2").get_json()["gender"] == "female"
    assert fhir.get(f"Patient/{pid}/_history/3").status_code == 404


def test_update_with_identical_content_does_not_add_a_version(fhir: Fhir) -> None:
    created = fhir.create(patient())
    resp = fhir.put(f"Patient/{created['id']}", created)
    assert resp.status_code == 200
    assert resp.get_json()["meta"]["versionId"] == "1"


def test_update_as_create_with_client_id(fhir: Fhir) -> None:
    resp = fhir.put("Patient/my-id-1", patient(id="my-id-1"))
    assert resp.status_code == 201
    assert resp.get_json()["id"] == "my-id-1"
    assert fhir.get("Patient/my-id-1").status_code == 200


def test_if_match_stale_version_is_412(fhir: Fhir) -> None:
    created = fhir.create(patient())
    pid = created["id"]
    ok = fhir.put(f"Patient/{pid}", {**created, "gender": "female"}, headers={"If-Match": 'W/"1"'})
    assert ok.status_code == 200
    stale = fhir.put(f"Patient/{pid}", {**created, "gender": "other"}, headers={"If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert stale.get_json()["resourceType"] == "OperationOutcome"
    assert fhir.get(f"Patient/{pid}").get_json()["gender"] == "female"


def test_delete_then_read_is_410_and_history_is_kept(fhir: Fhir) -> None:
    created = fhir.create(patient())
    pid = created["id"]
    assert fhir.delete(f"Patient/{pid}").status_code == 204
    gone = fhir.get(f"Patient/{pid}")
    assert gone.status_code == 410
    assert gone.get_json()["issue"][0]["code"] == "deleted"
    history = fhir.get(f"Patient/{pid}/_history").get_json()
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "POST"]
    assert fhir.get(f"Patient/{pid}/_history/1").status_code == 200
    assert fhir.get(f"Patient/{pid}/_history/2").status_code == 410
    assert fhir.delete(f"Patient/{pid}").status_code == 204  # idempotent
    assert fhir.search_ids(f"Patient?_id={pid}") == set()


def test_update_after_delete_revives_with_next_version(fhir: Fhir) -> None:
    created = fhir.create(patient())
    pid = created["id"]
    fhir.delete(f"Patient/{pid}")
    resp = fhir.put(f"Patient/{pid}", {**created, "gender": "female"})
    assert resp.status_code in (200, 201)
    assert resp.get_json()["meta"]["versionId"] == "3"


def test_prefer_return_minimal_and_operation_outcome(fhir: Fhir) -> None:
    minimal = fhir.post("Patient", patient(), headers={"Prefer": "return=minimal"})
    assert minimal.status_code == 201 and minimal.get_data() == b""
    assert minimal.headers["Location"]
    outcome = fhir.post("Patient", patient(), headers={"Prefer": "return=OperationOutcome"})
    assert outcome.status_code == 201
    assert outcome.get_json()["resourceType"] == "OperationOutcome"


def test_application_json_is_accepted(fhir: Fhir) -> None:
    resp = fhir.post("Patient", patient(), content_type="application/json")
    assert resp.status_code == 201


def test_conditional_create(fhir: Fhir) -> None:
    ident = {"system": "urn:mrn", "value": "12345"}
    headers = {"If-None-Exist": "identifier=urn:mrn|12345"}
    first = fhir.post("Patient", patient(identifier=[ident]), headers=headers)
    assert first.status_code == 201
    second = fhir.post("Patient", patient(identifier=[ident]), headers=headers)
    assert second.status_code == 200
    assert second.get_json()["id"] == first.get_json()["id"]
    fhir.post("Patient", patient(identifier=[ident]))  # unconditional: a duplicate
    third = fhir.post("Patient", patient(identifier=[ident]), headers=headers)
    assert third.status_code == 412


def test_conditional_update_creates_then_updates(fhir: Fhir) -> None:
    ident = {"system": "urn:mrn", "value": "C-1"}
    created = fhir.put("Patient?identifier=urn:mrn|C-1", patient(identifier=[ident]))
    assert created.status_code == 201
    pid = created.get_json()["id"]
    updated = fhir.put("Patient?identifier=urn:mrn|C-1", patient(identifier=[ident], gender="female"))
    assert updated.status_code == 200
    assert updated.get_json()["id"] == pid
    assert updated.get_json()["meta"]["versionId"] == "2"


def test_conditional_delete(fhir: Fhir) -> None:
    ident = {"system": "urn:mrn", "value": "D-1"}
    pid = fhir.create(patient(identifier=[ident]))["id"]
    assert fhir.delete("Patient?identifier=urn:mrn|D-1").status_code == 204
    assert fhir.get(f"Patient/{pid}").status_code == 410
    fhir.create(patient(identifier=[{"system": "urn:mrn", "value": "D-2"}]))
    fhir.create(patient(identifier=[{"system": "urn:mrn", "value": "D-2"}]))
    assert fhir.delete("Patient?identifier=urn:mrn|D-2").status_code == 412


def test_json_patch(fhir: Fhir) -> None:
    pid = fhir.create(patient())["id"]
    ops = [{"op": "replace", "path": "/gender", "value": "female"},
           {"op": "add", "path": "/name/0/given/-", "value": "James"}]
    resp = fhir.patch(f"Patient/{pid}", ops)
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["gender"] == "female" and body["name"][0]["given"] == ["Peter", "James"]
    assert body["meta"]["versionId"] == "2"
    assert fhir.search_ids("Patient?given=james") == {pid}


def test_json_patch_errors(fhir: Fhir) -> None:
    pid = fhir.create(patient())["id"]
    failing_test = [{"op": "test", "path": "/gender", "value": "female"}]
    assert fhir.patch(f"Patient/{pid}", failing_test).status_code == 422
    assert fhir.patch(f"Patient/{pid}", {"not": "a list"}).status_code == 400
    change_id = [{"op": "replace", "path": "/id", "value": "other"}]
    assert fhir.patch(f"Patient/{pid}", change_id).status_code == 422
    invalid = [{"op": "replace", "path": "/gender", "value": 42}]
    assert fhir.patch(f"Patient/{pid}", invalid).status_code in (400, 422)
    assert fhir.get(f"Patient/{pid}").get_json()["meta"]["versionId"] == "1"


def test_malformed_json_is_400_operation_outcome(fhir: Fhir) -> None:
    resp = fhir.post("Patient", raw=b'{"resourceType": "Patient", ')
    assert resp.status_code == 400
    assert resp.get_json()["resourceType"] == "OperationOutcome"


def test_wrong_resource_type_and_id_mismatch(fhir: Fhir) -> None:
    assert fhir.post("Patient", {"resourceType": "Observation", "status": "final",
                                 "code": {"text": "x"}}).status_code == 400
    assert fhir.put("Patient/a", patient(id="b")).status_code == 400
    assert fhir.put("Patient/a", patient()).status_code == 400


def test_structurally_invalid_resource_is_rejected_and_nothing_written(fhir: Fhir) -> None:
    resp = fhir.post("Patient", {"resourceType": "Patient", "birthDate": "not-a-date"})
    assert resp.status_code in (400, 422)
    outcome = resp.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "not-a-date" not in orjson.dumps(outcome).decode()
    assert fhir.search("Patient?_summary=count")["total"] == 0


def test_unknown_type_and_unknown_endpoint(fhir: Fhir) -> None:
    assert fhir.get("NotAType/1").status_code == 404
    assert fhir.get("Patient/does-not-exist").status_code == 404
    assert fhir.get("Patient/1/_history/x").status_code == 400


def test_oversized_body_is_413(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url, max_body_bytes=4096))
    small = Fhir(app.test_client())
    big = patient(text={"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">"
                        + "x" * 5000 + "</div>"})
    resp = small.post("Patient", big)
    assert resp.status_code == 413
    assert resp.get_json()["resourceType"] == "OperationOutcome"
    assert small.search("Patient?_summary=count")["total"] == 0


def test_unsupported_media_types(fhir: Fhir) -> None:
    assert fhir.post("Patient", raw=b"<Patient/>", content_type="application/fhir+xml").status_code == 415
    assert fhir.get("metadata", headers={"Accept": "application/fhir+xml"}).status_code == 406


def test_method_not_allowed(fhir: Fhir) -> None:
    assert fhir.request("PUT", "metadata", {}).status_code == 405
