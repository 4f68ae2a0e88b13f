"""Building AuditEvent resources for RESTful interactions, after IHE Basic Audit Log Patterns (BALP).

https://hl7.org/fhir/R4/auditevent.html and https://profiles.ihe.net/ITI/BALP/.
Pure functions: the pipeline hands in who asked, what was asked and what was
answered; no PHI goes in — references, codes, a hash of the query, never
names or resource content.
"""
from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fhir_gateway.access import RequestContext
from fhir_gateway.search.values import micros_to_instant

EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL = "http://hl7.org/fhir/restful-interaction"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
USER_AGENT_EXT = "https://telehub.example/fhir/StructureDefinition/audit-user-agent"

# interaction (route table name) -> (BALP action, restful-interaction subtype)
ACTIONS: dict[str, tuple[str, str]] = {
    "read": ("R", "read"), "vread": ("R", "vread"), "create": ("C", "create"), "update": ("U", "update"),
    "patch": ("U", "patch"), "delete": ("D", "delete"), "search-type": ("E", "search-type"),
    "search-system": ("E", "search-system"), "history-instance": ("R", "history-instance"),
    "history-type": ("R", "history-type"), "history-system": ("R", "history-system"),
    "batch/transaction": ("E", "transaction"), "operation": ("E", "operation"), "import": ("C", "create"),
    "export": ("R", "operation"), "security": ("E", "operation"), "login": ("E", "login"),
    "token": ("E", "token"), "capabilities": ("R", "capabilities"),
}


def outcome_code(status: int) -> str:
    """AuditEvent.outcome: 0 success, 4 minor failure (client error), 8 serious failure (server error)."""
    if status < 400:
        return "0"
    return "4" if status < 500 else "8"


@dataclass
class AuditInput:
    """What the pipeline knows about one interaction."""

    interaction: str
    status: int
    ctx: RequestContext
    resource_type: str | None = None
    entities: list[str] = field(default_factory=list)  # "Type/id[/_history/v]" touched or returned
    patients: set[str] = field(default_factory=set)  # Patient ids whose data was touched
    query: str | None = None  # the raw query (hashed here, never stored plain)
    operation: str | None = None
    description: str | None = None  # a fixed, PHI-free text (e.g. "import batch")
    security: bool = False  # a denied request or an integrity failure: typed as a Security Alert


def query_hash(query: str) -> str:
    return base64.b64encode(hashlib.sha256(query.encode()).digest()).decode()


def build_audit_event(data: AuditInput, recorded: int, event_id: str | None = None) -> dict[str, Any]:
    action, subtype = ACTIONS.get(data.interaction.split(":")[0], ("E", "operation"))
    ctx = data.ctx
    agent: dict[str, Any] = {"type": {"coding": [{"system": PARTICIPATION, "code": "IRCP"}]}, "requestor": True}
    if ctx.user:
        agent["who"] = {"reference": ctx.user} if "/" in ctx.user else {"identifier": {"value": ctx.user}}
    elif ctx.client_id:
        agent["who"] = {"identifier": {"system": "urn:telehub:client", "value": ctx.client_id}}
    else:
        agent["who"] = {"display": "anonymous"}
    if ctx.client_id and ctx.user:
        agent["altId"] = ctx.client_id
    if ctx.role:
        agent["role"] = [{"text": ctx.role}]
    if ctx.ip:
        agent["network"] = {"address": ctx.ip, "type": "2"}  # 2 = IP address (IPv4 or IPv6)
    if ctx.user_agent:
        agent["extension"] = [{"url": USER_AGENT_EXT, "valueString": ctx.user_agent[:256]}]
    entities: list[dict[str, Any]] = []
    for ref in dict.fromkeys(data.entities):
        entities.append({"what": {"reference": ref}, "type": {"system": ENTITY_TYPE, "code": "2"},
                         "role": {"system": OBJECT_ROLE, "code": "4"}})
    for pid in sorted(data.patients):
        entities.append({"what": {"reference": f"Patient/{pid}"}, "type": {"system": ENTITY_TYPE, "code": "1"},
                         "role": {"system": OBJECT_ROLE, "code": "1"}})
    if data.query:
        entities.append({"type": {"system": ENTITY_TYPE, "code": "2"}, "role": {"system": OBJECT_ROLE, "code": "24"},
                         "query": query_hash(data.query)})
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": event_id or str(uuid.uuid4()),
        "type": {"system": EVENT_TYPE, "code": "rest", "display": "Restful Operation"},
        "subtype": [{"system": RESTFUL, "code": subtype}],
        "action": action,
        "recorded": micros_to_instant(recorded),
        "outcome": outcome_code(data.status),
        "agent": [agent],
        "source": {"observer": {"display": "Telehub FHIR server"},
                   "type": [{"system": SOURCE_TYPE, "code": "4"}]},
    }
    if data.security or data.interaction.startswith("security"):
        event["type"] = {"system": DICOM, "code": "110113", "display": "Security Alert"}
    if data.operation:
        event["subtype"].append({"system": "urn:telehub:operation", "code": data.operation})
    if data.description:
        event["outcomeDesc"] = data.description
    elif data.status >= 400:
        event["outcomeDesc"] = f"HTTP {data.status}"
    if entities:
        event["entity"] = entities
    return event


def patients_in(resource: Any, out: set[str]) -> None:
    """Patient ids a resource is about: itself, or any ``Patient/…`` reference in it (cheap walk)."""
    if isinstance(resource, dict):
        if resource.get("resourceType") == "Patient" and isinstance(resource.get("id"), str):
            out.add(resource["id"])
        for key, value in resource.items():
            if key == "reference" and isinstance(value, str) and value.startswith("Patient/"):
                out.add(value.split("/")[1])
            elif isinstance(value, dict | list):
                patients_in(value, out)
    elif isinstance(resource, list):
        for item in resource:
            patients_in(item, out)


def entities_from_response(body: Any, limit: int = 1000) -> tuple[list[str], set[str]]:
    """Resource references and patient ids found in a response (a resource or a Bundle)."""
    refs: list[str] = []
    patients: set[str] = set()
    if not isinstance(body, dict):
        return refs, patients
    items: Iterable[Any]
    if body.get("resourceType") == "Bundle":
        items = [e.get("resource") for e in body.get("entry", []) if isinstance(e, dict)]
        for e in body.get("entry", []):
            loc = (e.get("response") or {}).get("location") if isinstance(e, dict) else None
            if isinstance(loc, str):
                refs.append(_relative(loc))
    else:
        items = [body]
    for res in items:
        if not isinstance(res, dict) or res.get("resourceType") in (None, "OperationOutcome", "Bundle"):
            if isinstance(res, dict) and res.get("resourceType") == "Bundle":
                sub_refs, sub_patients = entities_from_response(res, limit)
                refs += sub_refs
                patients |= sub_patients
            continue
        if "id" in res:
            version = (res.get("meta") or {}).get("versionId")
            refs.append(f"{res['resourceType']}/{res['id']}" + (f"/_history/{version}" if version else ""))
        patients_in(res, patients)
        if len(refs) >= limit:
            break
    return refs, patients


def _relative(location: str) -> str:
    parts = location.split("/")
    if "_history" in parts:
        i = parts.index("_history")
        return "/".join(parts[max(0, i - 2):i + 2])
    return "/".join(parts[-2:])
