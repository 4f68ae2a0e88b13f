"""ORC/OBR order hooks: ServiceRequest, DiagnosticReport and Immunization (RXA).

IG ORC[ServiceRequest] / OBR[ServiceRequest] / OBR[DiagnosticReport] / RXA[Immunization].
Here: intent = order, R4-required code/occurrence fallbacks, RXA-21 = D → entered in
error, ORC-5 as the status fallback (LinuxForHealth does the same).
"""

from __future__ import annotations

from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes.coded import cwe
from mappers.hl7v2.datatypes.identifiers import ei
from mappers.hl7v2.datatypes.primitives import dtm
from mappers.hl7v2.engine import apply_datatype
from mappers.hl7v2.parser.message import Segment
from mappers.hl7v2.segments import hook
from mappers.hl7v2.segments.visit import event_overrides

_ID_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"


def order_identifiers(res: dict[str, Any], placer: Segment | None, filler_seg: Segment | None, ctx: Context,
                      fields: tuple[int, int] = (2, 3)) -> None:
    """PLAC/FILL identifiers (ORC-2/3 or OBR-2/3) when the IG rows left none."""
    if res.get("identifier"):
        return
    out: list[dict[str, Any]] = []
    for seg in (placer, filler_seg):
        if seg is None:
            continue
        for n, code in zip(fields, ("PLAC", "FILL"), strict=True):
            ident = ei(seg.first(n), ctx, None)
            if ident and all(i.get("value") != ident["value"] for i in out):
                ident["type"] = {"coding": [{"system": _ID_TYPE, "code": code}]}
                out.append(ident)
    if out:
        res["identifier"] = out


# Orders reported by the filler (results, schedules) rather than placed by the sender.
FILLER_MESSAGES = {"ORU", "SIU"}


def requester_role(seg: Segment | None, field: int, ctx: Context) -> dict[str, str] | None:
    """IG ORC-12 / OBR-16 → requester(PractitionerRole.practitioner(Practitioner))."""
    if seg is None:
        return None
    practitioner = apply_datatype("XCN[Practitioner]", seg.first(field), ctx)
    if not practitioner:
        return None
    role = {"resourceType": "PractitionerRole", "practitioner": {"reference": ctx.add(practitioner)}}
    return {"reference": ctx.add(role)}


@hook("order")
def order(res: dict[str, Any], seg: Segment, ctx: Context, roles: dict[str, Any]) -> None:
    res.setdefault("intent", "filler-order" if ctx.message.message_type in FILLER_MESSAGES else "order")
    if "requester" not in res:
        requester = requester_role(ctx.group.get("ORC"), 12, ctx) or requester_role(
            seg if seg.name == "OBR" else None, 16, ctx)
        if requester:
            res["requester"] = requester
    order_identifiers(res, ctx.group.get("ORC"), seg if seg.name == "OBR" else None, ctx)
    code_field = {"OBR": 4, "AIS": 3}.get(seg.name)
    if "code" not in res and code_field:
        code = cwe(seg.first(code_field), ctx, None)
        if code:
            res["code"] = code


@hook("report")
def report(res: dict[str, Any], seg: Segment, ctx: Context, roles: dict[str, Any]) -> None:
    order_identifiers(res, ctx.group.get("ORC"), seg, ctx)
    if "code" not in res:
        res["code"] = cwe(seg.first(4), ctx, None) or {"text": "unknown"}


@hook("rxa")
def rxa(res: dict[str, Any], seg: Segment, ctx: Context, roles: dict[str, Any]) -> None:
    if seg.text(21).upper() == "D":
        res["status"] = "entered-in-error"
    elif "status" not in res:
        orc = ctx.group.get("ORC")
        res["status"] = "not-done" if orc is not None and orc.text(5).upper() == "CA" else "completed"
    if "vaccineCode" not in res:
        res["vaccineCode"] = cwe(seg.first(5), ctx, None) or {"text": "unknown"}
    if not any(k.startswith("occurrence") for k in res):
        when = dtm(seg.text(3), ctx.options.default_offset)
        res["occurrenceString" if not when else "occurrenceDateTime"] = when or "unknown"
    source = seg.first(9)
    if source and "primarySource" not in res:
        # CDC IIS guide: RXA-9 "00" = new immunization record (primary source), else historical
        res["primarySource"] = source.get(1) == "00"
        if source.get(1) != "00":
            origin = cwe(source, ctx, None)
            if origin:
                res.setdefault("reportOrigin", origin)
    order_identifiers(res, ctx.group.get("ORC"), None, ctx)
    event_overrides(res, ctx)
