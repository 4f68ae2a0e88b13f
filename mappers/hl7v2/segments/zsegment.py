"""Z-segments: kept verbatim as an extension on the resource they follow.

Z-segments are site-defined (v2.8 Chapter 2, 2.8.51); without a site map there is no
FHIR meaning to give them, so each field is kept as a sub-extension ``field-N`` of a
Telehub extension, on the resource built from the preceding segment (the patient when
nothing precedes it). A site can register a real mapping later without losing data.
"""

from __future__ import annotations

from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.parser.message import Segment

URL = "https://telehub.example/fhir/StructureDefinition/hl7v2-z-segment"


def attach(seg: Segment, res: dict[str, Any] | None, ctx: Context) -> None:
    if res is None:
        return
    subs: list[dict[str, Any]] = [{"url": "segment", "valueString": seg.name}]
    for n in range(1, len(seg.fields)):
        raw = seg.raw(n)
        if raw:
            subs.append({"url": f"field-{n}", "valueString": seg.reps(n)[0].full_text if seg.reps(n) else raw})
    if len(subs) > 1:
        res.setdefault("extension", []).append({"url": URL, "extension": subs})
