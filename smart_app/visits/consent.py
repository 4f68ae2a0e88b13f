"""Consent first: telehealth-treatment Consent before the visit starts, a per-visit recording Consent.

Both are R4 `Consent <https://hl7.org/fhir/R4/consent.html>`_ resources in the hub (timestamped with
``dateTime``; the policy version is part of ``policy[0].uri``, so a new policy version asks again).
Recording consent names the visit's Appointment in ``provision.data`` (``Consent?data=`` finds it);
without it the server refuses to start recording (:func:`require_recording_consent`).
"""
from __future__ import annotations

from datetime import datetime

from smart_app.visits.errors import ConsentRequired
from smart_app.visits.ports import FhirPort, Resource

CATEGORY_SYSTEM = "https://telehub.local/fhir/CodeSystem/consent-category"
TREATMENT = "telehealth-treatment"
RECORDING = "visit-recording"
POLICY_BASE = "https://telehub.local/policies"
SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"


def policy_uri(kind: str, version: str) -> str:
    return f"{POLICY_BASE}/{kind}/{version}"


def _consent(patient_id: str, kind: str, version: str, now: datetime, scope: str, data: str | None) -> Resource:
    body: Resource = {
        "resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": SCOPE, "code": scope}]},
        "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": kind}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "dateTime": now.isoformat(timespec="seconds"),
        "performer": [{"reference": f"Patient/{patient_id}"}],
        "policy": [{"uri": policy_uri(kind, version)}],
        "provision": {"type": "permit", "period": {"start": now.isoformat(timespec="seconds")}},
    }
    if data:
        body["provision"]["data"] = [{"meaning": "related", "reference": {"reference": data}}]
    return body


def _active(hub: FhirPort, patient_id: str, kind: str, version: str, data: str | None = None) -> Resource | None:
    params = [("patient", f"Patient/{patient_id}"), ("category", f"{CATEGORY_SYSTEM}|{kind}"), ("status", "active")]
    if data:
        params.append(("data", data))
    wanted = policy_uri(kind, version)
    for consent in hub.search("Consent", params):
        if any(p.get("uri") == wanted for p in consent.get("policy", [])):
            return consent
    return None


def record_treatment_consent(hub: FhirPort, patient_id: str, version: str, now: datetime) -> Resource:
    """The patient agrees to telehealth treatment under policy ``version`` (idempotent per version)."""
    return _active(hub, patient_id, TREATMENT, version) or hub.create(
        _consent(patient_id, TREATMENT, version, now, "treatment", None))


def has_treatment_consent(hub: FhirPort, patient_id: str, version: str) -> bool:
    return _active(hub, patient_id, TREATMENT, version) is not None


def record_recording_consent(hub: FhirPort, patient_id: str, appointment_id: str, version: str,
                             now: datetime) -> Resource:
    data = f"Appointment/{appointment_id}"
    return _active(hub, patient_id, RECORDING, version, data) or hub.create(
        _consent(patient_id, RECORDING, version, now, "patient-privacy", data))


def has_recording_consent(hub: FhirPort, patient_id: str, appointment_id: str, version: str) -> bool:
    return _active(hub, patient_id, RECORDING, version, f"Appointment/{appointment_id}") is not None


def require_recording_consent(hub: FhirPort, patient_id: str, appointment_id: str, version: str) -> None:
    if not has_recording_consent(hub, patient_id, appointment_id, version):
        raise ConsentRequired("recording needs the patient's recording consent for this visit")
