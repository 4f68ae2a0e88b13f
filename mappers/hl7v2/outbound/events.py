"""Which v2 event a FHIR change becomes (issue 6, "Outbound"): one table, no branches elsewhere.

A rule sees the resource as written and the version before it (None for a create)
and answers the trigger events to send, usually none or one.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Resource = Mapping[str, Any]
Rule = Callable[[Resource, Resource | None], list[str]]
FINAL = ("final", "amended", "corrected", "appended")


def _status(resource: Resource | None, key: str = "status") -> str:
    return str(resource.get(key, "")) if resource is not None else ""


def appointment(new: Resource, old: Resource | None) -> list[str]:
    if _status(new) == "cancelled":
        return [] if _status(old) == "cancelled" else ["SIU^S15"]
    if _status(new) in ("entered-in-error", "noshow"):
        return []
    return ["SIU^S12"] if old is None else ["SIU^S14"]


def patient(new: Resource, old: Resource | None) -> list[str]:
    return ["ADT^A04"] if old is None else ["ADT^A08"]


def signed_order(new: Resource, old: Resource | None) -> list[str]:
    """A prescription is signed when it becomes an active order."""
    if _status(new) == "active" and str(new.get("intent", "order")) in ("order", "original-order", "instance-order"):
        return [] if _status(old) == "active" else ["RDE^O11"]
    return []


def signed_note(new: Resource, old: Resource | None) -> list[str]:
    def signed(r: Resource | None) -> bool:
        return r is not None and _status(r) == "current" and (_status(r, "docStatus") in ("final", "amended")
                                                               or bool(r.get("authenticator")))
    return ["MDM^T02"] if signed(new) and not signed(old) else []


def result(new: Resource, old: Resource | None) -> list[str]:
    if _status(new) in FINAL and _status(new) != _status(old):
        return ["ORU^R01"]
    return []


RULES: dict[str, Rule] = {"Appointment": appointment, "Patient": patient, "MedicationRequest": signed_order,
                          "DocumentReference": signed_note, "DiagnosticReport": result, "Observation": result}


def events_for(new: Resource, old: Resource | None = None) -> list[str]:
    rule = RULES.get(str(new.get("resourceType")))
    return rule(new, old) if rule else []
