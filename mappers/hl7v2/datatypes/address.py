"""XAD → Address (IG datatype map XAD[Address]).

XAD.1 (SAD street, subcomponents street/name/number) and XAD.2 → line, .3 city,
.4 state, .5 postalCode, .6 country, .7 type/use via AddressType maps, .9 district,
.12-.14 period. Written in Python because SAD's subcomponents and the two
AddressType concept maps (use vs type) do not fit one table row each.
"""

from __future__ import annotations

from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes import converter
from mappers.hl7v2.datatypes.coded import lookup
from mappers.hl7v2.datatypes.primitives import dtm
from mappers.hl7v2.parser.message import Value


@converter("XAD[Address]", "SAD[Address]")
def xad(v: Value, ctx: Context, vocab: str | None) -> dict[str, Any] | None:
    street = v.part(1)
    lines = [street.get(1), street.get(2), street.get(3), v.get(2), v.get(19)]
    out: dict[str, Any] = {}
    line = [x for x in lines if x]
    if line:
        out["line"] = line
    for key, idx in (("city", 3), ("state", 4), ("postalCode", 5), ("country", 6), ("district", 9)):
        text = v.get(idx)
        if text:
            out[key] = text
    kind = v.get(7)
    use = lookup("AddressType[Use]", kind)
    typ = lookup("AddressType[Type]", kind)
    if use:
        out["use"] = use[0]
    if typ:
        out["type"] = typ[0]
    start, end = dtm(v.get(13)), dtm(v.get(14))
    if not (start or end) and v.part(12):
        start, end = dtm(v.part(12).get(1)), dtm(v.part(12).get(2))
    if start or end:
        out["period"] = {k: x for k, x in (("start", start), ("end", end)) if x}
    return out if (line or "city" in out or "postalCode" in out or "state" in out or "country" in out) else None
