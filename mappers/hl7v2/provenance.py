"""Provenance for the whole message (IG MSH[Provenance-Source], EVN[Provenance]).

One Provenance per message targets every resource the message wrote: who sent it
(MSH-3/4), when (EVN-2, else MSH-7), the trigger event as activity (HL7 table 0003),
and the message control id as the source entity, so an operator can trace any resource
back to the raw message in the MLLP store.
"""

from __future__ import annotations

from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes.primitives import dtm

_AGENT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
_EVENT = "http://terminology.hl7.org/CodeSystem/v2-0003"


def provenance(ctx: Context, targets: list[str]) -> dict[str, Any] | None:
    if not targets:
        return None
    msg = ctx.message
    msh = msg.msh
    evn = msg.first("EVN")
    recorded = None
    for text in ((evn.text(2) if evn else ""), msh.text(7)):
        value = dtm(text, ctx.options.default_offset)
        if value and "T" in value:
            recorded = value
            break
    sender = " ".join(x for x in (msh.text(3), msh.text(4)) if x) or "unknown sender"
    prov: dict[str, Any] = {
        "resourceType": "Provenance",
        "target": [{"reference": t} for t in targets],
        "recorded": recorded or "1970-01-01T00:00:00Z",
        "activity": {"coding": [{"system": _EVENT, "code": msg.trigger}]} if msg.trigger else None,
        "agent": [{"type": {"coding": [{"system": _AGENT, "code": "author"}]}, "who": {"display": sender}}],
        "entity": [{"role": "source", "what": {"identifier": {"system": "urn:telehub:hl7v2:control-id",
                                                             "value": msg.control_id or "unknown"}}}],
    }
    return {k: v for k, v in prov.items() if v is not None}
