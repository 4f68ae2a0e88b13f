"""XTN → ContactPoint (IG datatype map XTN[ContactPoint]).

value = XTN.4 for Internet/X.400 (or an address containing '@'), else XTN.12 when
valued, else ``+<country> <area> <local> X<ext>`` from .5-.8, else the legacy XTN.1;
.2 → use (TelecommunicationUseCode), .3 → system (TelecommunicationEquipmentType),
.13/.14 → period, .18 → rank.
"""

from __future__ import annotations

from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes import converter
from mappers.hl7v2.datatypes.coded import lookup
from mappers.hl7v2.datatypes.primitives import dtm, number
from mappers.hl7v2.parser.message import Value

_EMAIL = {"INTERNET", "X.400"}


@converter("XTN[ContactPoint]")
def xtn(v: Value, ctx: Context, vocab: str | None) -> dict[str, Any] | None:
    use_code, equip = v.get(2).upper(), v.get(3).upper()
    email = v.get(4)
    out: dict[str, Any] = {}
    if equip in _EMAIL or (email and not v.get(7) and "@" in email):
        value = email or v.get(1)
        out["system"] = "email"
    else:
        parts = [f"+{v.get(5)}" if v.get(5) else "", v.get(6), v.get(7)]
        assembled = " ".join(p for p in parts if p)
        if assembled and v.get(8):
            assembled += f" X{v.get(8)}"
        value = v.get(12) or assembled or v.get(1)
        mapped = lookup("TelecommunicationEquipmentType", equip)
        if mapped and mapped[2].endswith("contact-point-use"):
            out["system"] = "phone"  # CP (cellular): the IG maps it to use=mobile
            out["use"] = mapped[0]
        elif mapped:
            out["system"] = mapped[0]
        elif equip:
            out["system"] = "other"
    if not value:
        return None
    out["value"] = value
    use = lookup("TelecommunicationUseCode", use_code)
    if use and use[0] != "mobile":
        out["use"] = use[0]
    elif use:
        out.setdefault("use", use[0])
    start, end = dtm(v.get(13)), dtm(v.get(14))
    if start or end:
        out["period"] = {k: x for k, x in (("start", start), ("end", end)) if x}
    rank = number(v.get(18))
    if isinstance(rank, int) and rank > 0:
        out["rank"] = rank
    return out
