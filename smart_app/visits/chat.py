"""In-call chat as R4 `Communication <https://hl7.org/fhir/R4/communication.html>`_ linked to the Encounter.

The hub audits every write and read (AuditEvent), and stores the text encrypted at rest; events on the
bus carry only the Communication id, never the text.
"""
from __future__ import annotations

from datetime import datetime

from smart_app.visits.errors import VisitError
from smart_app.visits.ports import FhirPort, Resource

MAX_CHARS = 4000


def who(role: str, patient_id: str | None, practitioner_id: str | None) -> str:
    return f"Patient/{patient_id}" if role == "patient" else f"Practitioner/{practitioner_id}"


def post(hub: FhirPort, encounter_id: str, patient_id: str, sender: str, recipient: str, text: str,
         now: datetime) -> Resource:
    text = text.strip()
    if not text or len(text) > MAX_CHARS:
        raise VisitError(f"a chat message holds 1 to {MAX_CHARS} characters")
    return hub.create({
        "resourceType": "Communication", "status": "completed",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/communication-category",
                                  "code": "notification"}], "text": "visit chat"}],
        "subject": {"reference": f"Patient/{patient_id}"}, "encounter": {"reference": f"Encounter/{encounter_id}"},
        "sent": now.isoformat(timespec="seconds"), "sender": {"reference": sender},
        "recipient": [{"reference": recipient}], "payload": [{"contentString": text}]})


def history(hub: FhirPort, encounter_id: str) -> list[Resource]:
    found = hub.search("Communication", {"encounter": f"Encounter/{encounter_id}", "_count": "200"})
    return sorted(found, key=lambda c: str(c.get("sent", "")))
