"""The after-visit summary: a DocumentReference (LOINC 34133-9) in the patient's compartment.

Written when the provider finishes the visit; it states facts the hub already holds (times,
provider, counts of chat messages and shared documents) plus the provider's note, as plain text.
"""
from __future__ import annotations

import base64
from datetime import datetime

from smart_app.visits.ports import FhirPort, Resource

SUMMARY = {"system": "http://loinc.org", "code": "34133-9", "display": "Summary of episode note"}


def text_for(encounter: Resource, *, messages: int, documents: int, note: str) -> str:
    period = encounter.get("period", {})
    providers = [p["individual"]["reference"] for p in encounter.get("participant", []) if p.get("individual")]
    lines = ["Video visit summary", f"Started: {period.get('start', '-')}", f"Ended: {period.get('end', '-')}",
             f"Clinician: {', '.join(providers) or '-'}", f"Chat messages: {messages}",
             f"Documents shared: {documents}"]
    if note.strip():
        lines += ["", "Notes from your clinician:", note.strip()]
    return "\n".join(lines) + "\n"


def write(hub: FhirPort, encounter: Resource, patient_id: str, *, messages: int, documents: int, note: str,
          now: datetime) -> Resource:
    text = text_for(encounter, messages=messages, documents=documents, note=note)
    authors = [{"reference": p["individual"]["reference"]} for p in encounter.get("participant", [])
               if p.get("individual")]
    return hub.create({
        "resourceType": "DocumentReference", "status": "current", "type": {"coding": [SUMMARY]},
        "subject": {"reference": f"Patient/{patient_id}"}, "date": now.isoformat(timespec="seconds"),
        "author": authors, "description": "Video visit summary",
        "content": [{"attachment": {"contentType": "text/plain; charset=utf-8", "title": "Visit summary",
                                    "data": base64.b64encode(text.encode()).decode()}}],
        "context": {"encounter": [{"reference": f"Encounter/{encounter['id']}"}],
                    "period": encounter.get("period", {})}})


def find(hub: FhirPort, encounter_id: str) -> Resource | None:
    found = hub.search("DocumentReference", {"encounter": f"Encounter/{encounter_id}",
                                             "type": f"{SUMMARY['system']}|{SUMMARY['code']}"})
    return found[0] if found else None
