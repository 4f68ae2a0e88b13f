"""Visit recordings as R4 `Media <https://hl7.org/fhir/R4/media.html>`_ + Binary, stored (encrypted) in the hub.

With the local WebRTC provider the clinician's browser records the call (MediaRecorder) once the
server has accepted the start (recording consent for this visit checked), and uploads the file here;
nothing leaves the hub. One transaction writes the Binary and the Media that points at it.
"""
from __future__ import annotations

import base64
import uuid
from datetime import datetime

from smart_app.visits.errors import VisitError
from smart_app.visits.ports import FhirPort, Resource

ALLOWED = frozenset({"video/webm", "audio/webm"})
MAX_BYTES = 50 * 1024 * 1024
MEDIA_TYPE = "http://terminology.hl7.org/CodeSystem/media-type"


def store(hub: FhirPort, *, encounter_id: str, patient_id: str, operator: str, content_type: str, data: bytes,
          started: str, now: datetime) -> Resource:
    base_type = content_type.split(";")[0].strip()
    if base_type not in ALLOWED:
        raise VisitError("a recording is a WebM file")
    if not data or len(data) > MAX_BYTES:
        raise VisitError("the recording is empty or too large")
    binary_url = f"urn:uuid:{uuid.uuid4()}"
    kind = "video" if base_type.startswith("video/") else "audio"
    media: Resource = {
        "resourceType": "Media", "status": "completed",
        "type": {"coding": [{"system": MEDIA_TYPE, "code": kind}]},
        "subject": {"reference": f"Patient/{patient_id}"}, "encounter": {"reference": f"Encounter/{encounter_id}"},
        "createdPeriod": {"start": started, "end": now.isoformat(timespec="seconds")},
        "issued": now.isoformat(timespec="milliseconds"), "operator": {"reference": operator},
        "content": {"contentType": base_type, "url": binary_url, "size": len(data), "title": "Visit recording"}}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": binary_url, "resource": {"resourceType": "Binary", "contentType": base_type,
                                             "securityContext": {"reference": f"Patient/{patient_id}"},
                                             "data": base64.b64encode(data).decode()},
         "request": {"method": "POST", "url": "Binary"}},
        {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": media, "request": {"method": "POST", "url": "Media"}}]}
    result = hub.transaction(bundle)
    location = str(result["entry"][1]["response"]["location"])
    return hub.get("/".join(location.split("/_history/")[0].split("/")[-2:]))


def of_visit(hub: FhirPort, encounter_id: str) -> list[Resource]:
    return hub.search("Media", {"encounter": f"Encounter/{encounter_id}"})
