"""OBX hooks (IG OBX[Observation], OBX[DocumentReference]).

The IG picks value[x] from OBX-2; the rows cover coded, numeric, SN and date values.
Here: text types keep every repetition and the full text (FT/TX carry formatting
escapes), a numeric that is not a number falls back to valueString, repeated OBX-5
values of coded types keep only the first (R4 value[x] is 0..1), and in MDM the OBX
text becomes the document's attachment (IG MDM_T02 message map).
"""

from __future__ import annotations

import base64
from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes.primitives import dtm, number
from mappers.hl7v2.engine import apply_datatype, apply_segment
from mappers.hl7v2.parser.message import Segment
from mappers.hl7v2.segments import hook

_TEXT = {"ST", "TX", "FT", "TN"}
_ROLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/practitioner-role"
_VALUE_KEYS = ("valueQuantity", "valueString", "valueCodeableConcept", "valuePeriod", "valueDateTime", "valueTime",
               "valueRange", "valueRatio", "valueSampledData", "valueBoolean", "valueInteger")


def obx_text(seg: Segment) -> str:
    return "\n".join(v.full_text for v in seg.reps(5)).strip()


@hook("obx")
def obx(res: dict[str, Any], seg: Segment, ctx: Context, roles: dict[str, Any]) -> None:
    vtype = seg.text(2).upper()
    if vtype in _TEXT or not vtype:
        text = obx_text(seg)
        if text:
            res["valueString"] = text
    elif vtype in ("DT", "DTM", "TS") and "valueDateTime" not in res:
        value = dtm(seg.text(5), ctx.options.default_offset)
        if value:
            res["valueDateTime"] = value
    quantity = res.get("valueQuantity")
    if isinstance(quantity, dict) and "value" not in quantity:
        del res["valueQuantity"]
        text = seg.first(5).text
        if text:
            res["valueString"] = f"{text} {quantity.get('unit', '')}".strip()
    reps = seg.reps(5)
    if len(reps) > 1 and vtype == "NM":
        # IG OBX[Observation-Component]: repeated numeric values become components
        res.pop("valueQuantity", None)
        unit = {k: v for k, v in (quantity or {}).items() if k != "value"} if isinstance(quantity, dict) else {}
        res["component"] = [{"code": res.get("code", {"text": "unknown"}),
                             "valueQuantity": {"value": n, **unit}}
                            for n in (number(v.text) for v in reps) if n is not None]
    for key in _VALUE_KEYS:
        if isinstance(res.get(key), list):
            res[key] = res[key][0]
    present = [k for k in _VALUE_KEYS if k in res]
    for extra in present[1:]:
        del res[extra]
    if not res.get("code"):
        res["code"] = {"text": seg.text(3) or "unknown"}
    _performers(res, seg, ctx)


def _role(practitioner: dict[str, Any] | None, code: str, system: str, ctx: Context,
          organization: dict[str, Any] | None = None) -> dict[str, Any] | None:
    if practitioner is None and organization is None:
        return None
    coding = {"code": code, "system": system}
    role: dict[str, Any] = {"resourceType": "PractitionerRole", "code": [{"coding": [coding]}]}
    if practitioner is not None:
        role["practitioner"] = {"reference": ctx.add(practitioner)}
    if organization is not None:
        role["organization"] = {"reference": ctx.add(organization)}
    return role


def _performers(res: dict[str, Any], seg: Segment, ctx: Context) -> None:
    """IG OBX[Observation] performer rows the table cannot express (nested resources):
    OBX-16 → PractitionerRole (responsibleObserver), OBX-15/23 → Organization,
    OBX-25 → PractitionerRole (MDIR, medical director) of the OBX-23 organization."""
    actors: list[dict[str, Any]] = []
    for v in seg.reps(16):
        role = _role(apply_datatype("XCN[Practitioner]", v, ctx), "responsibleObserver", _ROLE_SYSTEM, ctx)
        if role:
            actors.append(role)
    org15 = apply_datatype("CWE[Organization]", seg.first(15), ctx)
    if org15:
        actors.append(org15)
    org = apply_datatype("XON[Organization]", seg.first(23), ctx)
    director = apply_datatype("XCN[Practitioner]", seg.first(25), ctx)
    if director:
        role = _role(director, "MDIR", "http://terminology.hl7.org/CodeSystem/v2-0912", ctx, org)
        if role:
            actors.append(role)
    elif org:
        actors.append(org)
    for actor in actors:
        ref = {"reference": ctx.add(actor)}
        if ref not in res.setdefault("performer", []):
            res["performer"].append(ref)


_DOCUMENT_TYPES = _TEXT | {"ED", "RP", ""}


def _observation(seg: Segment, ctx: Context, roles: dict[str, Any]) -> None:
    """An MDM OBX that is a discrete result, not document text, stays an Observation."""
    res: dict[str, Any] = {"resourceType": "Observation"}
    apply_segment("OBX[Observation]", seg, ctx, into=res)
    obx(res, seg, ctx, roles)
    for element, role in (("subject", "patient"), ("encounter", "encounter")):
        if role in roles:
            res[element] = {"reference": ctx.add(roles[role])}
    patient = roles.get("patient", {}).get("_key", "")
    ctx.add(res, f"Observation|{patient}|{seg.name}|{seg.raw(1)}|{seg.raw(3)}|{seg.raw(4)}")


@hook("obx_document")
def obx_document(res: dict[str, Any] | None, seg: Segment, ctx: Context, roles: dict[str, Any]) -> None:
    if seg.text(2).upper() not in _DOCUMENT_TYPES:
        _observation(seg, ctx, roles)
        return
    if res is None or seg.text(2).upper() in ("ED", "RP"):
        return  # encapsulated data: the IG OBX[DocumentReference] row already made the attachment
    text = obx_text(seg)
    if not text:
        return
    data = base64.b64encode(text.encode("utf-8")).decode("ascii")
    contents = res.setdefault("content", [])
    for content in contents:
        attachment = content.setdefault("attachment", {})
        if "data" not in attachment:
            attachment["data"] = data
            attachment.setdefault("contentType", "text/plain")
            return
        if attachment.get("contentType", "text/plain").startswith("text/"):
            old = base64.b64decode(attachment["data"]).decode("utf-8", "replace")
            attachment["data"] = base64.b64encode(f"{old}\n{text}".encode()).decode("ascii")
            return
    contents.append({"attachment": {"contentType": "text/plain", "data": data}})
