"""PV1 hooks (IG PV1[Encounter]): the trigger event's own statement about the visit.

A03 discharges (finished), A11 cancels the admit, A13 cancels the discharge; the IG
derives status from PV1-2/PV1-45, the event overrides it (plan.EVENTS).
"""

from __future__ import annotations

from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.engine import apply_datatype
from mappers.hl7v2.messages.plan import EVENTS
from mappers.hl7v2.parser.message import Segment
from mappers.hl7v2.segments import hook


def event_overrides(res: dict[str, Any], ctx: Context) -> None:
    """Apply plan.EVENTS entries for this resource type."""
    msg = ctx.message
    for path, value in EVENTS.get(f"{msg.message_type}^{msg.trigger}", {}).items():
        rtype, element = path.split(".", 1)
        if res.get("resourceType") == rtype:
            res[element] = value


@hook("pv1")
def pv1(res: dict[str, Any], seg: Segment, ctx: Context, roles: dict[str, Any]) -> None:
    event_overrides(res, ctx)
    if ctx.message.trigger == "A13":
        period = res.get("period")
        if isinstance(period, dict):
            period.pop("end", None)
    for ident in res.get("identifier", ()):
        codings = ident.get("type", {}).get("coding", [])
        if len(codings) > 1 and any(c.get("code") == "VN" for c in codings):
            ident["type"] = {"coding": [c for c in codings if c.get("code") == "VN"]}
    appointment = roles.get("appointment")
    if appointment is not None:
        res.setdefault("appointment", []).append({"reference": ctx.add(appointment)})


@hook("pv2")
def pv2(res: dict[str, Any], seg: Segment, ctx: Context, roles: dict[str, Any]) -> None:
    """PV2-23 clinic organization name → Encounter.serviceProvider (as LinuxForHealth does)."""
    org = apply_datatype("XON[Organization]", seg.first(23), ctx)
    if org and "serviceProvider" not in res:
        res["serviceProvider"] = {"reference": ctx.add(org)}
