"""Make every resource valid R4 before it leaves: prune empties, fill required elements.

The IG maps populate what the message has; R4 still requires some elements the message
may lack (Observation.status, ServiceRequest.subject, Coverage.payor …). Defaults
come from ``plan.REQUIRED_DEFAULTS``; required references point at the message's
patient. Extensions without a url or value (rows the IG left half-specified) go.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.messages.plan import REQUIRED_DEFAULTS
from mappers.hl7v2.segments.scheduling import finish_appointment

REQUIRED_PATIENT_REF: dict[str, str] = {
    "ServiceRequest": "subject", "MedicationRequest": "subject", "Immunization": "patient",
    "AllergyIntolerance": "patient", "Condition": "subject", "Procedure": "subject", "Coverage": "beneficiary",
    "RelatedPerson": "patient", "Encounter": "subject", "Observation": "subject", "DiagnosticReport": "subject",
    "DocumentReference": "subject", "Specimen": "subject",
}
# List elements that are meaningless (and invalid) without a child: (type or "*", element) → child.
REQUIRED_CHILD: dict[tuple[str, str], str] = {
    ("*", "note"): "text", ("Immunization", "performer"): "actor", ("Encounter", "location"): "location",
    ("Encounter", "participant"): "individual", ("Procedure", "performer"): "actor",
    ("Condition", "evidence"): "code", ("AllergyIntolerance", "reaction"): "manifestation",
}
_VALUE_PREFIX = "value"
FINISHERS: dict[str, Callable[[dict[str, Any]], None]] = {"Appointment": finish_appointment}


def prune(value: Any) -> Any:
    """Drop None, empty strings, lists and objects, and extensions with no url or value."""
    kind = type(value)
    if kind is dict:
        out: dict[str, Any] = {}
        for k, v in value.items():
            kv = type(v)
            if kv is str:
                if v and not v.isspace():
                    out[k] = v
            elif kv is dict or kv is list:
                v = prune(v)
                if v:
                    out[k] = v
            elif v is not None:
                out[k] = v
        if "extension" in out:
            out["extension"] = [e for e in out["extension"] if type(e) is dict and _valid_extension(e)]
            if not out["extension"]:
                del out["extension"]
        return out
    if kind is list:
        items = []
        for v in value:
            kv = type(v)
            if kv is dict or kv is list:
                v = prune(v)
                if v:
                    items.append(v)
            elif kv is str:
                if v and not v.isspace():
                    items.append(v)
            elif v is not None:
                items.append(v)
        return items
    if kind is str:
        return value if value and not value.isspace() else None
    return value


def _valid_extension(ext: dict[str, Any]) -> bool:
    if not isinstance(ext.get("url"), str) or not ext["url"]:
        return False
    values = [k for k in ext if k.startswith(_VALUE_PREFIX)]
    return ("extension" in ext) != (len(values) == 1) and len(values) <= 1


def _structural(res: dict[str, Any]) -> None:
    """Drop list items missing their required child and primitive-extension misfits."""
    rtype = res["resourceType"]
    for (owner, element), child in REQUIRED_CHILD.items():
        if owner in ("*", rtype) and isinstance(res.get(element), list):
            res[element] = [x for x in res[element] if isinstance(x, dict) and x.get(child)]
            if not res[element]:
                del res[element]
    for key in [k for k in res if k.startswith("_") and k not in ("_key", "_patch")]:
        if isinstance(res.get(key[1:]), list) or key[1:] not in res:
            del res[key]


def finalize(ctx: Context, patient_url: str | None) -> None:
    for res in ctx.resources:
        private: dict[str, Any] = {k: res[k] for k in ("_key", "_patch") if k in res}
        cleaned = prune({k: v for k, v in res.items() if k not in private})
        res.clear()
        res.update(cleaned)
        res.update(private)
        _structural(res)
        rtype = res["resourceType"]
        for key, default in REQUIRED_DEFAULTS.get(rtype, {}).items():
            res.setdefault(key, copy.deepcopy(default))
        ref_key = REQUIRED_PATIENT_REF.get(rtype)
        if ref_key and ref_key not in res and rtype != "Patient":
            if patient_url:
                res[ref_key] = {"reference": patient_url}
            elif rtype not in ("Observation", "DiagnosticReport", "DocumentReference", "Specimen", "Encounter"):
                res[ref_key] = {"display": "patient not identified in message"}
        finisher = FINISHERS.get(rtype)
        if finisher:
            finisher(res)
