"""SCH / TQ1 / AIx hooks for Appointment (IG SCH[Appointment], AIS/AIG/AIL/AIP[Appointment]).

SCH-11 (TQ) or TQ1-7/8 give start and end; participants need a status in R4 (AIP-12
when sent, else ``accepted``); the trigger event sets the status (S15 cancelled,
S26 noshow).
"""

from __future__ import annotations

from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes.primitives import dtm
from mappers.hl7v2.parser.message import Segment
from mappers.hl7v2.segments import hook
from mappers.hl7v2.segments.visit import event_overrides

_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


@hook("sch")
def sch(res: dict[str, Any], seg: Segment, ctx: Context, roles: dict[str, Any]) -> None:
    timing = seg.first(11)
    start, end = dtm(timing.get(4), ctx.options.default_offset), dtm(timing.get(5), ctx.options.default_offset)
    if start and "T" in start:
        res.setdefault("start", start)
    if end and "T" in end:
        res.setdefault("end", end)
    for field, code, display in ((1, "PLAC", "Placer Identifier"), (2, "FILL", "Filler Identifier")):
        value = seg.text(field)
        for ident in res.get("identifier", ()):
            if ident.get("value") == value and "type" not in ident:
                ident["type"] = {"coding": [{"system": _V2_0203, "code": code, "display": display}]}
    event_overrides(res, ctx)


@hook("tq1_appointment")
def tq1(res: dict[str, Any] | None, seg: Segment, ctx: Context, roles: dict[str, Any]) -> None:
    if res is None:
        return
    start, end = dtm(seg.text(7), ctx.options.default_offset), dtm(seg.text(8), ctx.options.default_offset)
    if start and "T" in start:
        res["start"] = start  # TQ1 replaces SCH-11, withdrawn in v2.7
    if end and "T" in end:
        res["end"] = end


def finish_appointment(res: dict[str, Any]) -> None:
    """Called at bundle time: every participant needs an actor or type, and a status."""
    kept = []
    for p in res.get("participant", ()):
        if not (p.get("actor") or p.get("type")):
            continue
        p.setdefault("status", "accepted")
        kept.append(p)
    res["participant"] = kept or [{"status": "needs-action", "type": [{"text": "unspecified"}]}]
