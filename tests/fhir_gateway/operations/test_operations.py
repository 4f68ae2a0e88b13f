"""/metadata, $validate and Patient/$everything."""
from __future__ import annotations

from fhir_gateway.definitions import resource_types
from tests.fhir_gateway.conftest import Fhir, patient


def test_capability_statement_is_generated_from_registries(fhir: Fhir) -> None:
    resp = fhir.get("metadata")
    assert resp.status_code == 200
    cs = resp.get_json()
    assert cs["resourceType"] == "CapabilityStatement"
    assert cs["fhirVersion"] == "4.0.1"
    assert "http://hl7.org/fhir/us/core/CapabilityStatement/us-core-server" in cs["instantiates"]
    assert "application/fhir+json" in cs["format"]
    rest = cs["rest"][0]
    assert {i["code"] for i in rest["interaction"]} == {"transaction", "batch", "history-system"}
    by_type = {r["type"]: r for r in rest["resource"]}
    assert set(by_type) == set(resource_types())  # every concrete R4 resource type (146)
    pat = by_type["Patient"]
    assert "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient" in pat["supportedProfile"]
    names = {p["name"] for p in pat["searchParam"]}
    assert {"name", "birthdate", "identifier", "gender", "race", "ethnicity"} <= names
    assert {"read", "vread", "update", "patch", "delete", "create", "search-type"} <= {
        i["code"] for i in pat["interaction"]}
    assert {"everything", "validate"} <= {o["name"] for o in pat["operation"]}
    assert "Provenance:target" in pat["searchRevInclude"]
    assert "MedicationRequest:medication" in by_type["MedicationRequest"]["searchInclude"]
    oauth = rest["security"]["extension"][0]
    assert oauth["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    assert {e["url"] for e in oauth["extension"]} == {"authorize", "token", "register", "introspect", "revoke"}


def test_validate_operation(fhir: Fhir) -> None:
    ok = fhir.post("Patient/$validate", patient())
    assert ok.status_code == 200
    assert ok.get_json()["issue"][0]["severity"] == "information"
    bad = fhir.post("Patient/$validate", {"resourceType": "Patient", "gender": 7})
    assert bad.status_code == 200
    assert bad.get_json()["issue"][0]["severity"] in ("error", "fatal")
    params = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": patient()}]}
    assert fhir.post("Patient/$validate", params).get_json()["issue"][0]["severity"] == "information"
    assert fhir.search("Patient?_summary=count")["total"] == 0  # $validate writes nothing


def test_unknown_operation_is_404(fhir: Fhir) -> None:
    assert fhir.get("Patient/$nope").status_code == 404
    assert fhir.get("Observation/1/$everything").status_code == 404


def test_patient_everything_follows_the_compartment(synthea_fhir: Fhir) -> None:
    bundle = synthea_fhir.search("Patient?_count=1")
    pid = bundle["entry"][0]["resource"]["id"]
    everything = synthea_fhir.search(f"Patient/{pid}/$everything")
    types = {e["resource"]["resourceType"] for e in everything["entry"]}
    assert {"Patient", "Encounter", "Observation", "Condition"} <= types
    assert {"Organization", "Practitioner"} & types  # referenced resources come along
    assert everything["entry"][0]["resource"]["id"] == pid
    for e in everything["entry"]:
        r = e["resource"]
        if r["resourceType"] in ("Observation", "Encounter", "Condition"):
            assert r["subject"]["reference"] == f"Patient/{pid}"
    only = synthea_fhir.search(f"Patient/{pid}/$everything?_type=Encounter")
    assert {e["resource"]["resourceType"] for e in only["entry"]} == {"Encounter"}
    paged = synthea_fhir.search(f"Patient/{pid}/$everything?_count=5")
    assert len(paged["entry"]) == 5
    assert any(link["relation"] == "next" for link in paged["link"])
    since = synthea_fhir.search(f"Patient/{pid}/$everything?_since=2999-01-01")
    assert "entry" not in since  # FHIR JSON has no empty arrays
    assert synthea_fhir.get("Patient/nobody/$everything").status_code == 404
