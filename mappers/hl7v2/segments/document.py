"""TXA hooks (IG TXA[DocumentReference]): document status and a content placeholder.

R4 DocumentReference needs ``content`` (1..*); the OBX segments that follow in MDM
fill the attachment (observation.obx_document). TXA-17 (completion status, table 0271)
gives docStatus; ``status`` is the record status: current, or superseded when TXA-19
(availability, table 0273) says obsolete or unavailable. TXA-3 (presentation) → MIME type.
"""

from __future__ import annotations

from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.parser.message import Segment
from mappers.hl7v2.segments import hook

# HL7 table 0271 (document completion status) → DocumentReference.docStatus
_DOC_STATUS = {"AU": "final", "LA": "final", "DI": "preliminary", "DO": "preliminary", "IN": "preliminary",
               "IP": "preliminary", "PA": "preliminary"}
# TXA-3 (document content presentation, HL7 table 0191) → MIME type
_PRESENTATION = {"TX": "text/plain", "FT": "text/plain", "HTML": "text/html", "RTF": "application/rtf",
                 "PDF": "application/pdf", "XML": "text/xml"}


@hook("txa")
def txa(res: dict[str, Any], seg: Segment, ctx: Context, roles: dict[str, Any]) -> None:
    res["status"] = "superseded" if seg.text(19).upper() in ("OB", "UN") else "current"
    status = _DOC_STATUS.get(seg.text(17).upper())
    if status:
        res["docStatus"] = status
    else:
        res.pop("docStatus", None)
    for content in res.get("content", ()):
        attachment = content.get("attachment", {})
        kind = str(attachment.get("contentType", "")).upper()
        if kind in _PRESENTATION:
            attachment["contentType"] = _PRESENTATION[kind]
        elif "/" not in kind:
            attachment.pop("contentType", None)
    res["content"] = [c for c in res.get("content", ()) if c.get("attachment")]
    if not res["content"]:
        del res["content"]
    encounter = roles.get("encounter")
    if encounter is not None:
        res.setdefault("context", {}).setdefault("encounter", []).append({"reference": ctx.add(encounter)})
    res.setdefault("content", [{"attachment": {"contentType": _PRESENTATION.get(seg.text(3).upper(), "text/plain")}}])
