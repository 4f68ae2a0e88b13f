"""Pharmacy orders: RXO and RXE → MedicationRequest (with the ORC of the group).

IG RXO[MedicationRequest] gives dosage, dispense and substitution rows; RXO-1 → the
medication. The IG has no RXE map ("under construction"); RXE follows its RXO analogue
and LinuxForHealth's MedicationRequest template: RXE-2 medication, RXE-3/4/5 dose,
RXE-10/11 dispense quantity, RXE-12 refills, RXE-7 patient instruction, RXE-13/ORC-12
requester, RXE-27 reason, RXE-32/ORC-9 authoredOn. ORC-2/3 → PLAC/FILL identifiers,
ORC-5 (else ORC-1) → status.
"""

from __future__ import annotations

from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes.coded import cwe, lookup
from mappers.hl7v2.datatypes.primitives import dtm, number
from mappers.hl7v2.engine import apply_datatype
from mappers.hl7v2.parser.message import Segment
from mappers.hl7v2.segments import hook
from mappers.hl7v2.segments.orders import order_identifiers

_ORDER_CONTROL = {"NW": "active", "CA": "cancelled", "DC": "stopped", "HD": "on-hold", "RL": "active",
                  "XO": "active", "OK": "active", "SC": "active", "RP": "active"}


def _quantity(value: str, unit: Segment | None, unit_field: int, ctx: Context) -> dict[str, Any] | None:
    n = number(value)
    if n is None:
        return None
    out: dict[str, Any] = {"value": n}
    if unit is not None:
        u = apply_datatype("CWE[Quantity]", unit.first(unit_field), ctx)
        if u:
            out.update(u)
    return out


def apply_orc(res: dict[str, Any], orc: Segment | None, ctx: Context) -> None:
    if orc is None:
        return
    order_identifiers(res, orc, None, ctx)
    status = lookup("OrderStatus", orc.text(5))
    if status and "status" not in res:
        res["status"] = status[0]
    elif orc.text(1).upper() in _ORDER_CONTROL and "status" not in res:
        res["status"] = _ORDER_CONTROL[orc.text(1).upper()]
    authored = dtm(orc.text(9), ctx.options.default_offset)
    if authored:
        res.setdefault("authoredOn", authored)
    requester = apply_datatype("XCN[Practitioner]", orc.first(12), ctx)
    if requester and "requester" not in res:
        res["requester"] = {"reference": ctx.add(requester)}


def _medication(res: dict[str, Any], v: Any, ctx: Context) -> None:
    if "medicationCodeableConcept" not in res and "medicationReference" not in res:
        med = cwe(v, ctx, None)
        if med:
            res["medicationCodeableConcept"] = med


@hook("rxo")
def rxo(res: dict[str, Any], seg: Segment, ctx: Context, roles: dict[str, Any]) -> None:
    res.setdefault("intent", "order")
    _medication(res, seg.first(1), ctx)
    apply_orc(res, ctx.group.get("ORC"), ctx)
    res.setdefault("medicationCodeableConcept", {"text": "unknown"})


@hook("rxe")
def rxe(res: dict[str, Any], seg: Segment, ctx: Context, roles: dict[str, Any]) -> None:
    res.setdefault("intent", "order")
    _medication(res, seg.first(2), ctx)
    rxo_seg = ctx.group.get("RXO")
    if rxo_seg is not None:
        _medication(res, rxo_seg.first(1), ctx)
    res.setdefault("medicationCodeableConcept", {"text": "unknown"})
    dosage: dict[str, Any] = {}
    if seg.text(7) or seg.text(7, 2):
        dosage["patientInstruction"] = seg.text(7, 2) or seg.text(7)
    if seg.text(21):
        dosage["text"] = seg.text(21, 2) or seg.text(21)
    low = _quantity(seg.text(3), seg, 5, ctx)
    high = _quantity(seg.text(4), seg, 5, ctx)
    if low and high:
        dosage["doseAndRate"] = [{"doseRange": {"low": low, "high": high}}]
    elif low:
        dosage["doseAndRate"] = [{"doseQuantity": low}]
    rate = _quantity(seg.text(23), seg, 24, ctx)
    if rate:
        dosage.setdefault("doseAndRate", [{}])[0]["rateQuantity"] = rate
    max_dose = number(seg.text(19))
    if max_dose is not None:  # IG RXO sheet, RXE-19 row: per day
        dosage["maxDosePerPeriod"] = {"numerator": {"value": max_dose}, "denominator": {
            "value": 1, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"}}
    if dosage:
        res.setdefault("dosageInstruction", []).append(dosage)
    dispense: dict[str, Any] = {}
    quantity = _quantity(seg.text(10), seg, 11, ctx)
    if quantity:
        dispense["quantity"] = quantity
    refills = number(seg.text(12))
    if isinstance(refills, int) and refills >= 0:
        dispense["numberOfRepeatsAllowed"] = refills
    if dispense:
        res["dispenseRequest"] = dispense
    reasons = [c for c in (cwe(v, ctx, None) for v in seg.reps(27)) if c]
    if reasons:
        res["reasonCode"] = reasons
    requester = apply_datatype("XCN[Practitioner]", seg.first(13), ctx)
    if requester:
        res["requester"] = {"reference": ctx.add(requester)}
    authored = dtm(seg.text(32), ctx.options.default_offset)
    if authored:
        res["authoredOn"] = authored
    apply_orc(res, ctx.group.get("ORC"), ctx)
