"""NTE: comments onto the resource the note follows (IG NTE[Observation] etc.).

Where the IG has an NTE map for the target type the engine already applied it; this
hook covers the other types with an Annotation ``note`` (or Appointment.comment).
"""

from __future__ import annotations

from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.engine import maps
from mappers.hl7v2.parser.message import Segment
from mappers.hl7v2.segments import hook

_NOTE_TYPES = {"Observation", "ServiceRequest", "MedicationRequest", "Immunization", "AllergyIntolerance",
               "Condition", "Procedure", "Specimen"}


def note_text(seg: Segment) -> str:
    return "\n".join(v.full_text for v in seg.reps(3)).strip()


@hook("nte")
def nte(res: dict[str, Any] | None, seg: Segment, ctx: Context, roles: dict[str, Any]) -> None:
    if res is None:
        return
    rtype = res["resourceType"]
    has_map = f"NTE[{rtype}]" in maps()["segments"] or any(k.startswith(f"NTE[{rtype}-") for k in maps()["segments"])
    if has_map and rtype != "Appointment":
        return
    text = note_text(seg)
    if not text:
        return
    if rtype == "Appointment":
        res["comment"] = f"{res['comment']}\n{text}" if res.get("comment") else text
    elif rtype in _NOTE_TYPES:
        res.setdefault("note", []).append({"text": text})
