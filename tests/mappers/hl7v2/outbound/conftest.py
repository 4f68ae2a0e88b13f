"""FHIR resources for the outbound mapper tests (hand-made, no PHI of real people)."""
from __future__ import annotations

import base64
from typing import Any

import pytest

from mappers.hl7v2.outbound import Change, OutboundConfig

V2 = "http://terminology.hl7.org/CodeSystem/"


@pytest.fixture
def patient() -> dict[str, Any]:
    return {"resourceType": "Patient", "id": "p1",
            "identifier": [{"system": "urn:oid:1.2.3", "value": "MRN1",
                            "type": {"coding": [{"system": V2 + "v2-0203", "code": "MR"}]}}],
            "name": [{"family": "Doe", "given": ["Jane", "Q"], "use": "official"}], "gender": "female",
            "birthDate": "1980-01-02",
            "address": [{"line": ["1 Main St", "Apt 2"], "city": "Town", "state": "MA", "postalCode": "02100",
                         "use": "home"}],
            "telecom": [{"system": "phone", "value": "555-1234", "use": "home"},
                        {"system": "email", "value": "j@example.org"}]}


@pytest.fixture
def related(patient: dict[str, Any]) -> dict[str, Any]:
    obs = {"resourceType": "Observation", "id": "o1", "status": "final", "subject": {"reference": "Patient/p1"},
           "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
           "effectiveDateTime": "2026-01-05T10:00:00Z",
           "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
           "referenceRange": [{"low": {"value": 60}, "high": {"value": 100}}]}
    return {"Patient/p1": patient, "Observation/o1": obs,
            "Practitioner/dr1": {"resourceType": "Practitioner", "id": "dr1", "identifier": [{"value": "NPI1"}],
                                 "name": [{"family": "Who", "given": ["Doctor"]}]},
            "Location/l1": {"resourceType": "Location", "id": "l1", "name": "Virtual room"},
            "Encounter/e1": {"resourceType": "Encounter", "id": "e1", "status": "finished",
                             "class": {"code": "VR"}, "period": {"start": "2026-01-05T09:45:00Z"}}}


@pytest.fixture
def appointment() -> dict[str, Any]:
    return {"resourceType": "Appointment", "id": "a1", "status": "booked", "start": "2026-02-01T09:00:00-05:00",
            "end": "2026-02-01T09:30:00-05:00", "minutesDuration": 30,
            "serviceType": [{"coding": [{"system": "http://snomed.info/sct", "code": "11429006",
                                         "display": "Consultation"}]}],
            "appointmentType": {"coding": [{"system": V2 + "v2-0276", "code": "FOLLOWUP"}]},
            "participant": [{"actor": {"reference": "Patient/p1"}, "status": "accepted"},
                            {"actor": {"reference": "Practitioner/dr1"}, "status": "accepted"},
                            {"actor": {"reference": "Location/l1"}, "status": "accepted"}]}


@pytest.fixture
def prescription() -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
            "subject": {"reference": "Patient/p1"}, "encounter": {"reference": "Encounter/e1"},
            "requester": {"reference": "Practitioner/dr1"}, "authoredOn": "2026-01-05T10:00:00Z",
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                      "code": "197361", "display": "Amlodipine 5 MG Oral Tablet"}]},
            "dosageInstruction": [{"text": "1 tab daily", "timing": {"code": {"coding": [{"code": "QD"}]}},
                                   "route": {"coding": [{"system": V2 + "v2-0162", "code": "PO"}]},
                                   "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablet"}}]}],
            "dispenseRequest": {"numberOfRepeatsAllowed": 2, "quantity": {"value": 30, "unit": "tablet"}}}


@pytest.fixture
def note() -> dict[str, Any]:
    text = "S: cough | 3 days\nO: T 37.2^C\nA/P: rest & fluids"
    return {"resourceType": "DocumentReference", "id": "d1", "status": "current", "docStatus": "final",
            "subject": {"reference": "Patient/p1"}, "date": "2026-01-05T10:00:00Z",
            "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}]},
            "author": [{"reference": "Practitioner/dr1"}], "authenticator": {"reference": "Practitioner/dr1"},
            "context": {"encounter": [{"reference": "Encounter/e1"}]},
            "content": [{"attachment": {"contentType": "text/plain",
                                        "data": base64.b64encode(text.encode()).decode()}}]}


@pytest.fixture
def report() -> dict[str, Any]:
    return {"resourceType": "DiagnosticReport", "id": "r1", "status": "final", "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "85353-1", "display": "Vitals panel"}]},
            "category": [{"coding": [{"system": V2 + "v2-0074", "code": "LAB"}]}],
            "effectiveDateTime": "2026-01-05T10:00:00Z", "issued": "2026-01-05T11:00:00Z",
            "result": [{"reference": "Observation/o1"}], "conclusion": "Normal"}


@pytest.fixture
def config() -> OutboundConfig:
    return OutboundConfig(receiving_application="EPIC", receiving_facility="CLINIC")


def change(resource: dict[str, Any], related: dict[str, Any], previous: dict[str, Any] | None = None) -> Change:
    return Change(resource, previous, related)
