"""In-visit document sharing: DocumentReference + Binary, both stored (encrypted at rest) and audited by the hub.

One transaction creates the Binary and the DocumentReference pointing at it, so a shared document is
never half there. Allowed types are a short list (PDF, images, plain text); the size is capped.
"""
from __future__ import annotations

import base64
import uuid
from datetime import datetime

from smart_app.visits.errors import VisitError
from smart_app.visits.ports import FhirPort, Resource

ALLOWED = frozenset({"application/pdf", "image/png", "image/jpeg", "text/plain"})
MAX_BYTES = 5 * 1024 * 1024
KINDS = {  # what was shared -> LOINC document type
    "imaging": ("18748-4", "Diagnostic imaging study"),
    "care-plan": ("18776-5", "Plan of care note"),
    "prescription": ("57833-6", "Prescription for medication"),
    "other": ("55107-7", "Addendum Document"),
}


def share(hub: FhirPort, *, encounter_id: str, patient_id: str, author: str, kind: str, title: str,
          content_type: str, data: bytes, now: datetime) -> Resource:
    """Store the file and its DocumentReference in one transaction; return the DocumentReference."""
    if content_type not in ALLOWED:
        raise VisitError("share a PDF, PNG, JPEG or plain-text file")
    if not data or len(data) > MAX_BYTES:
        raise VisitError("the file is empty or larger than 5 MB")
    code, display = KINDS.get(kind, KINDS["other"])
    binary_url = f"urn:uuid:{uuid.uuid4()}"
    docref: Resource = {
        "resourceType": "DocumentReference", "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{patient_id}"}, "date": now.isoformat(timespec="seconds"),
        "author": [{"reference": author}], "description": title.strip()[:200] or display,
        "content": [{"attachment": {"contentType": content_type, "url": binary_url, "size": len(data),
                                    "title": title.strip()[:200] or display, "creation": now.isoformat(
                                        timespec="seconds")}}],
        "context": {"encounter": [{"reference": f"Encounter/{encounter_id}"}]}}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": binary_url, "resource": {"resourceType": "Binary", "contentType": content_type,
                                             "securityContext": {"reference": f"Patient/{patient_id}"},
                                             "data": base64.b64encode(data).decode()},
         "request": {"method": "POST", "url": "Binary"}},
        {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": docref, "request": {"method": "POST",
                                                                               "url": "DocumentReference"}}]}
    result = hub.transaction(bundle)
    location = str(result["entry"][1]["response"]["location"])
    return hub.get("/".join(location.split("/_history/")[0].split("/")[-2:]))


def shared_in(hub: FhirPort, encounter_id: str) -> list[Resource]:
    """Documents shared in the visit (not the after-visit summary), oldest first."""
    found = hub.search("DocumentReference", {"encounter": f"Encounter/{encounter_id}", "_count": "100"})
    codes = {code for code, _ in KINDS.values()}
    shared = [d for d in found if any(c.get("code") in codes for c in d.get("type", {}).get("coding", []))]
    return sorted(shared, key=lambda d: str(d.get("date", "")))


def binary_id(docref: Resource) -> str:
    url = str(docref["content"][0]["attachment"]["url"])
    return url.split("/_history/")[0].rsplit("/", 1)[-1]


def read_binary(hub: FhirPort, docref: Resource) -> tuple[str, bytes]:
    binary = hub.get(f"Binary/{binary_id(docref)}")
    return str(binary["contentType"]), base64.b64decode(binary.get("data", ""))


def read_binary_inline(docref: Resource) -> str:
    """The text of an attachment carried inline (the visit summary)."""
    return base64.b64decode(docref["content"][0]["attachment"].get("data", "")).decode()
