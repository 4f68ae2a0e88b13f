"""Matching the EHR's patient and practitioner to the hub's records (live hub, by identifier)."""
from __future__ import annotations

import uuid

from smart_app.issuers import Issuers, Quirks
from smart_app.matching import match_patient, match_practitioner, practitioner_ref
from smart_app.settings import TrustedIssuer
from tests.smart_app.conftest import LiveApp

EHR = "https://ehr.example.org/fhir"


def test_unknown_patient_is_created_once_then_found(live_app: LiveApp) -> None:
    hub = live_app.services.hub
    mrn = uuid.uuid4().hex
    ehr_patient = {"resourceType": "Patient", "id": "ehr-77", "gender": "female", "birthDate": "1990-01-02",
                   "name": [{"family": "Newcomer", "given": ["Nia"]}],
                   "identifier": [{"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-00-1234"},
                                  {"system": "urn:oid:1.2.3.4", "value": mrn,
                                   "type": {"coding": [{"code": "MR"}]}}]}
    quirks = Quirks("generic-r4", mrn_rules=({"type_code": "MR"},))
    first = match_patient(hub, ehr_patient, iss=EHR, quirks=quirks)
    again = match_patient(hub, ehr_patient, iss=EHR, quirks=quirks)
    assert first == again
    copy = hub.get(f"Patient/{first}")
    assert {"system": f"{EHR}/Patient", "value": "ehr-77"} in copy["identifier"]
    assert copy["name"][0]["family"] == "Newcomer" and "text" not in copy and copy["id"] != "ehr-77"
    # another EHR's record of the same person (same MRN) is the same hub patient
    other = {**ehr_patient, "id": "elsewhere-1"}
    assert match_patient(hub, other, iss="https://other.example/fhir", quirks=quirks) == first


def test_the_hub_as_ehr_is_the_same_record(live_app: LiveApp) -> None:
    hub = live_app.services.hub
    pid = live_app.patients["Hintz"]
    assert match_patient(hub, {"resourceType": "Patient", "id": pid}, iss=hub.base, quirks=Quirks("x")) == pid


def test_practitioner_by_fhir_user(live_app: LiveApp) -> None:
    hub = live_app.services.hub
    doc = live_app.practitioner
    assert practitioner_ref(f"{hub.base}/Practitioner/{doc}", iss=EHR, hub_base=hub.base) == (hub.base, doc)
    assert practitioner_ref("Practitioner/9", iss=EHR, hub_base=hub.base) == (EHR, "9")
    assert practitioner_ref("Patient/9", iss=EHR, hub_base=hub.base) is None
    npi = next(i for i in hub.get(f"Practitioner/{doc}")["identifier"] if "npi" in i["system"])
    ehr_doc = {"resourceType": "Practitioner", "id": "epic-doc", "identifier": [npi]}
    found = match_practitioner(hub, f"{EHR}/Practitioner/epic-doc", iss=EHR, quirks=Quirks("epic"),
                               read_ehr=lambda ref: ehr_doc)
    assert found == doc
    assert match_practitioner(hub, "Practitioner/nobody", iss=EHR, quirks=Quirks("epic"),
                              read_ehr=lambda ref: {"resourceType": "Practitioner", "identifier": []}) is None


def test_issuers_use_vendor_profiles() -> None:
    from smart_app.issuers import load_profiles

    issuers = Issuers((TrustedIssuer(EHR, "epic"), TrustedIssuer("https://a.example/fhir/r4", "athena")),
                      load_profiles())
    iss, quirks = issuers.resolve(EHR + "/")
    assert iss == EHR and quirks.banner_as_string and quirks.mrn_rules
    _, athena = issuers.resolve("https://a.example/fhir/r4")
    assert athena.practice_param == "ah-practice"
