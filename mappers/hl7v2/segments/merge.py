"""MRG (ADT^A40 merge): link the surviving patient and retire the old one.

The survivor (PID) gets ``link`` type ``replaces``; the retired record (MRG-1 prior
identifiers) is patched, not replaced, so its history stays: ``active = false`` and
``link`` type ``replaced-by`` (FHIR R4 Patient.link, "Merging patients").
"""

from __future__ import annotations

from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes.identifiers import cx
from mappers.hl7v2.parser.message import Segment
from mappers.hl7v2.segments import hook


@hook("mrg")
def mrg(res: dict[str, Any] | None, seg: Segment, ctx: Context, roles: dict[str, Any]) -> None:
    survivor = roles.get("patient")
    prior = [i for i in (cx(v, ctx, None) for v in seg.reps(1)) if i]
    if survivor is None or not prior:
        return
    survivor_url = ctx.add(survivor)
    old: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": prior,
        "active": False,
        "link": [{"other": {"reference": survivor_url}, "type": "replaced-by"}],
        "_patch": True,
    }
    old_url = ctx.add(old)
    link = {"other": {"reference": old_url}, "type": "replaces"}
    if link not in survivor.setdefault("link", []):
        survivor["link"].append(link)
