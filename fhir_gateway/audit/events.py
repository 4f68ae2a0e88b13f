"""Building AuditEvent resources for RESTful interactions, after IHE Basic Audit Log Patterns (BALP).

https://hl7.org/fhir/R4/auditevent.html and https://profiles.ihe.net/ITI/BALP/.
Pure functions: the pipeline hands in who asked, what was asked and what was
answered; no PHI goes in — references, codes, a hash of the query, never
names or resource content.
"""
from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fhir_gateway.access import RequestContext

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


def recorded_instant(micros: int) -> str:
    """A FHIR instant (UTC) of microseconds since the epoch: milliseconds, or microseconds when there are
    any (as :func:`fhir_gateway.search.values.micros_to_instant`, without building a datetime)."""
    seconds, fraction = divmod(micros, 1_000_000)
    t = time.gmtime(seconds)
    frac = f"{fraction:06d}"
    if frac.endswith("000"):
        frac = frac[:3]
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
            f".{frac}+00:00")


def query_hash(query: str) -> str:
    return base64.b64encode(hashlib.sha256(query.encode()).digest()).decode()


# Constant parts of every event, built once. Events share them, so an event is read-only once built (it is
# serialised, sealed and chained as it is; nothing edits one afterwards).
_REST_TYPE = {"system": EVENT_TYPE, "code": "rest", "display": "Restful Operation"}
_SECURITY_TYPE = {"system": DICOM, "code": "110113", "display": "Security Alert"}
_SOURCE = {"observer": {"display": "Telehub FHIR server"}, "type": [{"system": SOURCE_TYPE, "code": "4"}]}
_AGENT_TYPE = {"coding": [{"system": PARTICIPATION, "code": "IRCP"}]}
_ANONYMOUS = {"display": "anonymous"}
_RESOURCE_TYPE = {"system": ENTITY_TYPE, "code": "2"}
_PATIENT_TYPE = {"system": ENTITY_TYPE, "code": "1"}
_DOMAIN_ROLE = {"system": OBJECT_ROLE, "code": "4"}
_PATIENT_ROLE = {"system": OBJECT_ROLE, "code": "1"}
_QUERY_ROLE = {"system": OBJECT_ROLE, "code": "24"}
_SUBTYPES = {code: {"system": RESTFUL, "code": code} for _, code in ACTIONS.values()}


def build_audit_event(data: AuditInput, recorded: int, event_id: str | None = None) -> dict[str, Any]:
    action, subtype = ACTIONS.get(data.interaction.split(":")[0], ("E", "operation"))
    ctx = data.ctx
    agent: dict[str, Any] = {"type": _AGENT_TYPE, "requestor": True}
    if ctx.user:
        agent["who"] = {"reference": ctx.user} if "/" in ctx.user else {"identifier": {"value": ctx.user}}
    elif ctx.client_id:
        agent["who"] = {"identifier": {"system": "urn:telehub:client", "value": ctx.client_id}}
    else:
        agent["who"] = _ANONYMOUS
    if ctx.client_id and ctx.user:
        agent["altId"] = ctx.client_id
    if ctx.role:
        agent["role"] = [{"text": ctx.role}]
    if ctx.ip:
        agent["network"] = {"address": ctx.ip, "type": "2"}  # 2 = IP address (IPv4 or IPv6)
    if ctx.user_agent:
        agent["extension"] = [{"url": USER_AGENT_EXT, "valueString": ctx.user_agent[:256]}]
    entities: list[dict[str, Any]] = [
        {"what": {"reference": ref}, "type": _RESOURCE_TYPE, "role": _DOMAIN_ROLE}
        for ref in dict.fromkeys(data.entities)]
    entities += [{"what": {"reference": f"Patient/{pid}"}, "type": _PATIENT_TYPE, "role": _PATIENT_ROLE}
                 for pid in sorted(data.patients)]
    if data.query:
        entities.append({"type": _RESOURCE_TYPE, "role": _QUERY_ROLE, "query": query_hash(data.query)})
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": event_id or str(uuid.uuid4()),
        "type": _REST_TYPE,
        "subtype": [_SUBTYPES.get(subtype) or {"system": RESTFUL, "code": subtype}],
        "action": action,
        "recorded": recorded_instant(recorded),
        "outcome": outcome_code(data.status),
        "agent": [agent],
        "source": _SOURCE,
    }
    if data.security or data.interaction.startswith("security"):
        event["type"] = _SECURITY_TYPE
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
    stack = [resource]
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        if node.__class__ is dict:
            if node.get("resourceType") == "Patient" and isinstance(node.get("id"), str):
                out.add(node["id"])
            for key, value in node.items():
                if key == "reference" and value.__class__ is str and value.startswith("Patient/"):
                    out.add(value.split("/")[1])
                elif isinstance(value, dict | list):
                    push(value)
        elif node.__class__ is list:
            for item in node:
                if isinstance(item, dict | list):
                    push(item)
        elif isinstance(node, dict | list):  # subclasses: rare, walked the slow way
            patients_in(dict(node) if isinstance(node, dict) else list(node), out)


_PATIENT_REF = b'"reference":"Patient/'


def patient_references(payload: bytes, out: set[str]) -> None:
    """Every ``Patient/<id>`` reference in compact JSON (orjson output), by a substring search.

    In compact JSON the key ``"reference"`` directly follows ``{`` or ``,``; inside a string its quotes
    would be escaped, so text that merely contains the phrase is not taken for a reference.
    """
    find = payload.find
    size = len(_PATIENT_REF)
    i = find(_PATIENT_REF)
    while i >= 0:
        if i and payload[i - 1] in (0x7B, 0x2C):  # "{" or ","
            start = i + size
            end = find(b'"', start)
            ref = payload[start:end]
            slash = ref.find(b"/")
            if slash >= 0:
                ref = ref[:slash]
            if ref and b"\\" not in ref:
                out.add(ref.decode("utf-8", "replace"))
        i = find(_PATIENT_REF, i + size)


def entities_from_response(body: Any, limit: int = 1000, payload: bytes | None = None) -> tuple[list[str], set[str]]:
    """Resource references and patient ids found in a response (a resource or a Bundle).

    ``payload``: the response already serialised as compact JSON; the patients are then found by
    :func:`patient_references` over it (plus returned Patient resources), which is several times
    cheaper than walking every returned resource.
    """
    refs: list[str] = []
    patients: set[str] = set()
    if not isinstance(body, dict):
        return refs, patients
    _entities(body, limit, refs, patients, walk=payload is None)
    if payload is not None:
        patient_references(payload, patients)
    return refs, patients


def _entities(body: dict[str, Any], limit: int, refs: list[str], patients: set[str], *, walk: bool) -> None:
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
        if not isinstance(res, dict):
            continue
        rtype = res.get("resourceType")
        if rtype is None or rtype == "OperationOutcome":
            continue
        if rtype == "Bundle":
            _entities(res, limit, refs, patients, walk=walk)
            continue
        if "id" in res:
            version = (res.get("meta") or {}).get("versionId")
            refs.append(f"{rtype}/{res['id']}" + (f"/_history/{version}" if version else ""))
        if walk:
            patients_in(res, patients)
        elif rtype == "Patient" and isinstance(res.get("id"), str):
            patients.add(res["id"])
        if len(refs) >= limit:
            break


def _relative(location: str) -> str:
    parts = location.split("/")
    if "_history" in parts:
        i = parts.index("_history")
        return "/".join(parts[max(0, i - 2):i + 2])
    return "/".join(parts[-2:])
