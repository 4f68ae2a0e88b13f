"""PID hooks (IG PID[Patient]): race/ethnicity extensions and the mother (PID-21).

IG: PID-10 and PID-22 go to a *local* extension; for US use that is US Core race /
ethnicity (OMB categories, CDC Race & Ethnicity code system). PID-21 → RelatedPerson
(CX[RelatedPerson-Mother]) with relationship MTH.
"""

from __future__ import annotations

from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes.identifiers import cx
from mappers.hl7v2.maps import load
from mappers.hl7v2.parser.message import Segment
from mappers.hl7v2.segments import hook

_MTH = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH",
                    "display": "mother"}]}


_CDCREC = "urn:oid:2.16.840.1.113883.6.238"
_US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
# HL7 table 0189 (ethnic group) → CDC Race & Ethnicity OMB category
_ETHNICITY = {"H": ("2135-2", "Hispanic or Latino"), "N": ("2186-5", "Not Hispanic or Latino")}
_CDC_SYSTEMS = {"", "HL70005", "HL70189", "CDCREC", "2.16.840.1.113883.6.238"}


def _omb(seg: Segment, field: int, kind: str) -> dict[str, Any] | None:
    codings = []
    for v in seg.reps(field):
        code, display, system = v.get(1), v.get(2), v.get(3).upper()
        if kind == "ethnicity" and code.upper() in _ETHNICITY:
            code, display = _ETHNICITY[code.upper()]
        elif system not in _CDC_SYSTEMS or not code:
            continue
        codings.append({"code": code, "display": display, "system": _CDCREC} if display else
                       {"code": code, "system": _CDCREC})
    if not codings:
        return None
    subs: list[dict[str, Any]] = [{"url": "ombCategory", "valueCoding": c} for c in codings]
    text = "+".join(c.get("display", c["code"]) for c in codings)
    subs.append({"url": "text", "valueString": text})
    return {"url": f"{_US_CORE}us-core-{kind}", "extension": subs}


_BCP47 = "urn:ietf:bcp:47"


def _languages(res: dict[str, Any]) -> None:
    """PID-15 primary language: ISO 639 codes → BCP 47 tags (maps/languages.json); preferred."""
    table: dict[str, list[str]] = load("languages.json")
    for comm in res.get("communication", ()):
        for coding in comm.get("language", {}).get("coding", ()):
            tag = table.get(str(coding.get("code", "")).lower())
            if tag and coding.get("system", _BCP47) == _BCP47:
                coding.update({"code": tag[0], "display": tag[1], "system": _BCP47})
        comm.setdefault("preferred", True)


@hook("pid")
def pid(res: dict[str, Any], seg: Segment, ctx: Context, roles: dict[str, Any]) -> None:
    _languages(res)
    for field, kind in ((10, "race"), (22, "ethnicity")):
        ext = _omb(seg, field, kind)
        if ext:
            res.setdefault("extension", []).append(ext)
    mothers = [i for i in (cx(v, ctx, None) for v in seg.reps(21)) if i]
    if not mothers:
        return
    url = ctx.add(res)
    ctx.add({"resourceType": "RelatedPerson", "identifier": mothers, "relationship": [_MTH],
             "patient": {"reference": url}})
