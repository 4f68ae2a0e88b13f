"""Role-based access and the patient compartment, enforced on every path (read, search, includes,
chains, _has, history, $everything, batch entries, writes)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, request

from fhir_gateway.access import RequestContext
from fhir_gateway.app import create_app
from tests.fhir_gateway.conftest import Fhir, make_settings


def as_role(app: Flask) -> None:
    """Test hook standing in for the SMART layer: the role and patient come from test headers."""

    @app.before_request
    def _ctx() -> None:
        role = request.headers.get("X-Test-Role")
        if role:
            request.telehub_ctx = RequestContext(role=role, patient=request.headers.get("X-Test-Patient"),
                                                 user=f"test-{role}", ip=request.remote_addr)


class Client(Fhir):
    def __init__(self, app: Flask, role: str | None = None, patient: str | None = None) -> None:
        super().__init__(app.test_client())
        self.headers = {k: v for k, v in (("X-Test-Role", role), ("X-Test-Patient", patient)) if v}

    def request(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        kw["headers"] = {**self.headers, **(kw.get("headers") or {})}
        return super().request(method, path, body, **kw)


@pytest.fixture
def world(database_url: str) -> Iterator[dict[str, Any]]:
    app = create_app(make_settings(database_url))
    as_role(app)
    admin = Client(app)  # auth off and no role: full access, to set the scene
    doc = admin.create({"resourceType": "Practitioner", "name": [{"family": "House"}]})
    people = {}
    for name in ("Alice", "Bob"):
        p = admin.create({"resourceType": "Patient", "name": [{"family": name}], "gender": "female",
                          "birthDate": "1980-01-01", "extension": [
                              {"url": "http://example.org/secret", "valueString": "clinical note"}]})
        enc = admin.create({"resourceType": "Encounter", "status": "finished", "class": {"code": "VR"},
                            "subject": {"reference": f"Patient/{p['id']}"},
                            "participant": [{"individual": {"reference": f"Practitioner/{doc['id']}"}}]})
        obs = admin.create({"resourceType": "Observation", "status": "final", "code": {"coding": [
            {"system": "http://loinc.org", "code": "8867-4"}]}, "subject": {"reference": f"Patient/{p['id']}"},
            "encounter": {"reference": f"Encounter/{enc['id']}"}})
        people[name] = {"patient": p, "encounter": enc, "observation": obs}
    yield {"app": app, "doc": doc, **people}
    app.extensions["telehub.fhir"].repository.engine.dispose()


def ids(bundle: dict[str, Any], mode: str | None = None) -> set[str]:
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle.get("entry", [])
            if mode is None or e["search"]["mode"] == mode}


def test_front_desk_sees_demographics_only(world: dict[str, Any]) -> None:
    desk = Client(world["app"], "front_desk")
    alice = world["Alice"]["patient"]
    for path in ("Observation", f"Observation/{world['Alice']['observation']['id']}", "Condition",
                 "DocumentReference", "MedicationRequest", "Encounter"):
        resp = desk.get(path)
        assert resp.status_code == 403, path
        assert resp.get_json()["resourceType"] == "OperationOutcome"
    seen = desk.get(f"Patient/{alice['id']}").get_json()
    assert seen["name"] == alice["name"] and "extension" not in seen
    searched = desk.search("Patient?family=Alice")["entry"][0]["resource"]
    assert "extension" not in searched
    # an update by the front desk cannot erase what it cannot see
    resp = desk.put(f"Patient/{alice['id']}", {**seen, "gender": "other"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    full = Client(world["app"]).get(f"Patient/{alice['id']}").get_json()
    assert full["gender"] == "other" and full["extension"] == alice["extension"]
    assert desk.post("Observation", world["Alice"]["observation"]).status_code == 403


def test_patient_reads_only_own_compartment(world: dict[str, Any]) -> None:
    alice, bob = world["Alice"], world["Bob"]
    me = Client(world["app"], "patient", alice["patient"]["id"])
    assert me.get(f"Patient/{alice['patient']['id']}").status_code == 200
    assert me.get(f"Patient/{bob['patient']['id']}").status_code == 403
    assert me.get(f"Observation/{bob['observation']['id']}").status_code == 403
    assert me.get(f"Observation/{alice['observation']['id']}").status_code == 200
    assert me.get(f"Practitioner/{world['doc']['id']}").status_code == 200  # reference data
    everything_obs = me.search("Observation?_total=accurate")
    assert ids(everything_obs) == {f"Observation/{alice['observation']['id']}"}
    assert everything_obs["total"] == 1
    assert ids(me.search("Patient")) == {f"Patient/{alice['patient']['id']}"}
    assert ids(me.search(f"Observation?subject=Patient/{bob['patient']['id']}")) == set()


def test_patient_context_holds_for_includes_chains_has_history_and_everything(world: dict[str, Any]) -> None:
    alice, bob = world["Alice"], world["Bob"]
    me = Client(world["app"], "patient", alice["patient"]["id"])
    rev = me.search(f"Practitioner?_id={world['doc']['id']}&_revinclude=Encounter:practitioner")
    assert ids(rev, "include") == {f"Encounter/{alice['encounter']['id']}"}
    inc = me.search("Observation?_include=Observation:subject&_include=Observation:encounter")
    assert ids(inc) == {f"Observation/{alice['observation']['id']}", f"Patient/{alice['patient']['id']}",
                        f"Encounter/{alice['encounter']['id']}"}
    assert ids(me.search("Observation?subject:Patient.family=Bob")) == set()
    assert ids(me.search("Patient?_has:Observation:patient:code=8867-4")) == {f"Patient/{alice['patient']['id']}"}
    history = me.get("Observation/_history").get_json()
    assert {e["fullUrl"].split("/fhir/")[1] for e in history["entry"]} == {
        f"Observation/{alice['observation']['id']}"}
    assert history["total"] == 1
    system = me.get("_history").get_json()
    assert all(bob["patient"]["id"] not in e["fullUrl"] for e in system["entry"])
    assert me.get(f"Patient/{bob['patient']['id']}/$everything").status_code == 403
    mine = me.search(f"Patient/{alice['patient']['id']}/$everything")
    assert f"Observation/{bob['observation']['id']}" not in ids(mine)
    assert me.get(f"Patient/{bob['patient']['id']}/_history").get_json().get("entry") is None


def test_patient_context_holds_in_batch_entries_and_writes(world: dict[str, Any]) -> None:
    alice, bob = world["Alice"], world["Bob"]
    me = Client(world["app"], "patient", alice["patient"]["id"])
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": f"Observation/{bob['observation']['id']}"}},
        {"request": {"method": "GET", "url": f"Observation/{alice['observation']['id']}"}},
        {"request": {"method": "GET", "url": "Observation?code=8867-4"}},
    ]}
    out = me.post("", batch).get_json()
    assert [e["response"]["status"] for e in out["entry"]] == ["403", "200 OK", "200 OK"]
    assert ids(out["entry"][2]["resource"]) == {f"Observation/{alice['observation']['id']}"}
    foreign = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
               "subject": {"reference": f"Patient/{bob['patient']['id']}"}}
    assert me.post("Observation", foreign).status_code == 403
    own = {**foreign, "subject": {"reference": f"Patient/{alice['patient']['id']}"}}
    assert me.post("Observation", own).status_code == 201
    assert me.post("Practitioner", {"resourceType": "Practitioner"}).status_code == 403


def test_auditor_and_unauthenticated(database_url: str) -> None:
    from fhir_gateway.policy import PatientCompartment, RolePolicy, load_roles
    from fhir_gateway.search.extract import IndexExtractor
    from fhir_gateway.search.registry import default_registry

    # the role arrives from the test hook; a request without one is refused as it is once SMART is on
    policy = RolePolicy(load_roles(), PatientCompartment(IndexExtractor(default_registry())),
                        open_without_role=False)
    app = create_app(make_settings(database_url), access=policy)
    as_role(app)
    nobody = Client(app)
    assert nobody.get("Patient").status_code == 401
    auditor = Client(app, "auditor")
    assert auditor.get("AuditEvent").status_code == 200
    assert auditor.get("Patient").status_code == 403
    assert Client(app, "physician").get("AuditEvent").status_code == 403
    assert Client(app, "astronaut").get("Patient").status_code == 403
    assert Client(app, "patient").get("Patient").status_code == 403  # patient role without a patient context
    app.extensions["telehub.fhir"].repository.engine.dispose()
