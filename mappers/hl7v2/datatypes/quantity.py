"""Quantities: NM, CQ, SN, NR and CWE units → Quantity, Range, Ratio.

IG datatype maps NM[Quantity], CQ[Quantity], CWE[Quantity] (OBX-6 units: UCUM when
the coding system says so), SN[Quantity|Range|Ratio] and NR[Range].
"""

from __future__ import annotations

from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes import converter
from mappers.hl7v2.datatypes.coded import system_uri
from mappers.hl7v2.datatypes.primitives import number
from mappers.hl7v2.parser.message import Value

_UCUM = "http://unitsofmeasure.org"
_COMPARATORS = {"<", "<=", ">", ">="}


@converter("CWE[Quantity]")
def unit(v: Value, ctx: Context, vocab: str | None) -> dict[str, Any] | None:
    """A unit CWE as the unit part of a Quantity (merged with the value by the engine)."""
    code, text, system = v.get(1), v.get(2), v.get(3)
    if not code and not text:
        return None
    out: dict[str, Any] = {"unit": text or code}
    if code and system:
        out["code"] = code
        out["system"] = _UCUM if system.upper() in ("UCUM", "ISO+", "ANS+") else system_uri(system, ctx)
    return out


@converter("NM[Quantity]")
def nm(v: Value, ctx: Context, vocab: str | None) -> dict[str, Any] | None:
    value = number(v.text)
    return None if value is None else {"value": value}


@converter("CQ[Quantity]")
def cq(v: Value, ctx: Context, vocab: str | None) -> dict[str, Any] | None:
    value = number(v.get(1))
    if value is None:
        return None
    out: dict[str, Any] = {"value": value}
    u = unit(v.part(2), ctx, None)
    if u:
        out.update(u)
    return out


@converter("SN[Quantity]")
def sn_quantity(v: Value, ctx: Context, vocab: str | None) -> dict[str, Any] | None:
    value = number(v.get(2))
    if value is None:
        return None
    out: dict[str, Any] = {"value": value}
    comparator = v.get(1)
    if comparator in _COMPARATORS:
        out["comparator"] = comparator
    return out


@converter("SN[Range]", "NR[Range]")
def sn_range(v: Value, ctx: Context, vocab: str | None) -> dict[str, Any] | None:
    low, high = (number(v.get(2)), number(v.get(4))) if v.part(2) or v.part(4) else (None, None)
    if low is None and high is None:
        low, high = number(v.get(1)), number(v.get(2))
    out = {k: {"value": x} for k, x in (("low", low), ("high", high)) if x is not None}
    return out or None


@converter("SN[Ratio]")
def sn_ratio(v: Value, ctx: Context, vocab: str | None) -> dict[str, Any] | None:
    num, den = number(v.get(2)), number(v.get(4))
    out = {k: {"value": x} for k, x in (("numerator", num), ("denominator", den)) if x is not None}
    return out or None
