"""FHIR JSON given to ``telehub hl7 convert --to v2`` or ``outbound enqueue``: a resource or a Bundle.

The focus is the first resource of a type some outbound message is built from (or the one
named); every resource in the input is available to resolve references, by ``Type/id`` and
by its Bundle fullUrl.
"""
from __future__ import annotations

from typing import Any

from mappers.hl7v2.outbound import MESSAGES, Change

OUTBOUND_TYPES = frozenset(t for spec in MESSAGES.values() for t in spec.resource_types)


def change_from_json(value: Any, focus: str | None = None) -> Change:
    if not isinstance(value, dict) or "resourceType" not in value:
        raise ValueError("the input is not a FHIR resource or Bundle")
    resources: list[tuple[str | None, dict[str, Any]]] = []
    if value["resourceType"] == "Bundle":
        for entry in value.get("entry") or []:
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                resources.append((entry.get("fullUrl"), entry["resource"]))
    else:
        resources.append((None, value))
    related: dict[str, dict[str, Any]] = {}
    for full_url, res in resources:
        if res.get("id"):
            related[f"{res['resourceType']}/{res['id']}"] = res
        if full_url:
            related[full_url] = res
    if focus:
        chosen = related.get(focus)
        if chosen is None:
            raise ValueError(f"{focus} is not in the input")
    else:
        chosen = next((r for _, r in resources if r.get("resourceType") in OUTBOUND_TYPES and
                       r.get("resourceType") != "Patient"), None) or \
            next((r for _, r in resources if r.get("resourceType") in OUTBOUND_TYPES), None)
        if chosen is None:
            raise ValueError(f"no resource to send: the input holds none of {', '.join(sorted(OUTBOUND_TYPES))}")
    return Change(chosen, None, related)
