"""Where imported data came from: ``meta.source`` on each resource and a Provenance per import.

https://hl7.org/fhir/R4/resource.html#Meta (``meta.source``: "a uri that identifies the source
system of the resource") and https://hl7.org/fhir/R4/provenance.html. Provenance ids and contents
are functions of their inputs, so importing the same thing twice yields the same Provenance.
"""
from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from mappers.vendor.references import NAMESPACE

JSON = dict[str, Any]
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"


def source_url(source_base: str, resource_type: str, vendor_id: str) -> str:
    return f"{source_base.rstrip('/')}/{resource_type}/{vendor_id}"


def with_source(resource: JSON, source: str) -> JSON:
    """A copy with ``meta.source`` set (vendor ``versionId``/``lastUpdated`` are the hub's to assign)."""
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    meta["source"] = source
    return {**resource, "meta": meta}


def build_provenance(targets: Sequence[str], sources: Sequence[str], recorded: str, *, vendor: str,
                     agent_display: str, created: bool) -> JSON:
    """One Provenance for resources imported together: ``targets`` are versioned hub references
    (``Observation/x/_history/2``), ``sources`` the vendor URLs they were read from."""
    ordered = sorted(targets)
    pid = str(uuid.uuid5(NAMESPACE, "provenance|" + "|".join(ordered)))
    return {
        "resourceType": "Provenance",
        "id": pid,
        "target": [{"reference": t} for t in ordered],
        "recorded": recorded,
        "activity": {"coding": [{"system": DATA_OPERATION, "code": "CREATE" if created else "UPDATE"}],
                     "text": f"imported from the clinic's EHR ({vendor})"},
        "agent": [{"type": {"coding": [{"system": PARTICIPANT_TYPE, "code": "assembler"}]},
                   "who": {"display": agent_display}}],
        "entity": [{"role": "source", "what": {"reference": s}} for s in sorted(set(sources))],
    }
