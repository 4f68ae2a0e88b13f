"""AL1/IAM, DG1, PR1, IN1 hooks: the constants and required elements the IG rows imply.

IG AL1[AllergyIntolerance] (clinicalStatus active), DG1[Condition] (DG1-21 D → entered
in error), IN1[Coverage] (payor is 1..* in R4: the insurer from IN1-4, else its name).
"""

from __future__ import annotations

from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes.primitives import dtm
from mappers.hl7v2.engine import apply_datatype
from mappers.hl7v2.parser.message import Segment
from mappers.hl7v2.segments import hook

_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
_VERIFY = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


@hook("al1")
def al1(res: dict[str, Any], seg: Segment, ctx: Context, roles: dict[str, Any]) -> None:
    res.setdefault("clinicalStatus", {"coding": [{"system": _CLINICAL, "code": "active", "display": "Active"}]})
    for reaction in res.get("reaction", ()):
        if "manifestation" not in reaction:
            reaction["manifestation"] = [{"text": seg.text(5)}] if seg.text(5) else []
    res["reaction"] = [r for r in res.get("reaction", ()) if r.get("manifestation")]
    if not res["reaction"]:
        del res["reaction"]


@hook("dg1")
def dg1(res: dict[str, Any], seg: Segment, ctx: Context, roles: dict[str, Any]) -> None:
    if seg.text(21).upper() == "D":
        res["verificationStatus"] = {"coding": [{"system": _VERIFY, "code": "entered-in-error"}]}
    encounter = roles.get("encounter")
    if encounter is not None:
        ref = {"reference": ctx.add(encounter)}
        diagnosis = {"condition": {"reference": ctx.add(res)}}
        encounter.setdefault("diagnosis", [])
        if diagnosis not in encounter["diagnosis"]:
            encounter["diagnosis"].append(diagnosis)
        res.setdefault("encounter", ref)


@hook("pr1")
def pr1(res: dict[str, Any], seg: Segment, ctx: Context, roles: dict[str, Any]) -> None:
    res.setdefault("status", "completed")


_SELF = {"SEL", "01", "SELF", "18"}


def _subscriber(res: dict[str, Any], seg: Segment, ctx: Context, roles: dict[str, Any]) -> None:
    """IN1-16..19: the insured is the patient (IN1-17 self) or a RelatedPerson."""
    relation = seg.text(17).upper()
    patient = roles.get("patient")
    if relation in _SELF or not (seg.valued(16) or relation):
        if patient is not None and "subscriber" not in res:
            res["subscriber"] = {"reference": ctx.add(patient)}
        return
    person: dict[str, Any] = {"resourceType": "RelatedPerson"}
    for element, key, field in (("name", "XPN[HumanName]", 16), ("address", "XAD[Address]", 19)):
        value = apply_datatype(key, seg.first(field), ctx)
        if value:
            person[element] = [value]
    rel = apply_datatype("CWE[CodeableConcept]", seg.first(17), ctx, "Relationship")
    if rel:
        person["relationship"] = [rel]
    birth = dtm(seg.text(18), date_only=True)
    if birth:
        person["birthDate"] = birth
    if patient is not None:
        person["patient"] = {"reference": ctx.add(patient)}
    res["subscriber"] = {"reference": ctx.add(person)}


@hook("in1")
def in1(res: dict[str, Any], seg: Segment, ctx: Context, roles: dict[str, Any]) -> None:
    _subscriber(res, seg, ctx, roles)
    if not res.get("payor"):
        name = seg.text(4)
        if name:
            res["payor"] = [{"reference": ctx.add({"resourceType": "Organization", "name": name})}]
        else:
            res["payor"] = [{"display": "unknown payor"}]
    elif isinstance(res["payor"], dict):
        res["payor"] = [res["payor"]]
