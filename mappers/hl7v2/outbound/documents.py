"""MDM T02 from a signed note, a DocumentReference (v2.5.1 chapter 9, TXA + OBX)."""
from __future__ import annotations

import base64
import binascii
from typing import Any

from mappers.hl7v2.outbound.builder import Grp, OutboundError, Seg, as_dict, seg
from mappers.hl7v2.outbound.context import Build
from mappers.hl7v2.outbound.patient import evn, pid, pv1
from mappers.hl7v2.outbound.values import cwe, dtm, ei, esc, xcn

MAX_ED = 65536 * 4
# LOINC note types -> TXA-2 document type (HL7 table 0270; IS in 2.5.1, so a code alone)
DOCUMENT_TYPE = {"11506-3": "PN", "34109-9": "PN", "11488-4": "CN", "18842-5": "DS", "34117-2": "HP",
                 "11504-8": "OP", "28570-0": "PR", "11526-1": "PA", "18748-4": "DI", "34133-9": "SP"}
V2_0270 = "http://terminology.hl7.org/CodeSystem/v2-0270"


def document_type(concept: Any) -> str:
    for coding in as_dict(concept).get("coding", ()):
        if coding.get("system") == V2_0270 and coding.get("code"):
            return esc(coding["code"])[:30]
        if coding.get("code") in DOCUMENT_TYPE:
            return DOCUMENT_TYPE[coding["code"]]
    return "PN"


def completion(doc: dict[str, Any]) -> str:
    """TXA-17 (HL7 table 0271): legally authenticated when signed by an authenticator."""
    if doc.get("authenticator"):
        return "LA"
    return {"final": "AU", "amended": "AU", "preliminary": "IP"}.get(str(doc.get("docStatus")), "DO")


def txa(build: Build, doc: dict[str, Any], content_type: str) -> Seg:
    cfg = build.config
    ident = next((i.get("value") for i in doc.get("identifier") or () if i.get("value")), None)
    authors = doc.get("author") or []
    author = xcn(build.change.resolve(authors[0]), as_dict(authors[0])) if authors else ""
    signer = doc.get("authenticator")
    return seg("TXA", {1: "1", 2: document_type(doc.get("type")), 3: content_type, 4: dtm(doc.get("date")),
                       5: author, 12: ei(ident or doc.get("id", ""), cfg.sending_application),
                       17: completion(doc), 19: "AV",
                       22: ppn(xcn(build.change.resolve(signer), as_dict(signer)), dtm(doc.get("date")))
                       if signer else ""})


def ppn(person: str, when: str) -> str:
    """PPN: an XCN whose 15th component is the time of the action (the signature)."""
    parts = person.split("^") if person else []
    return "^".join([*parts, *[""] * (14 - len(parts)), when]).rstrip("^")


def _text_lines(data: bytes) -> list[str]:
    return data.decode("utf-8", "replace").replace("\r\n", "\n").split("\n")


def observations(doc: dict[str, Any]) -> tuple[str, list[Seg]]:
    code = cwe(doc.get("type"), "NOTE")
    out: list[Seg] = []
    content_type = "TX"
    for content in doc.get("content") or ():
        attachment = as_dict(as_dict(content).get("attachment"))
        try:
            data = base64.b64decode(attachment.get("data", ""), validate=True)
        except (binascii.Error, ValueError):
            raise OutboundError("the note's attachment data is not base64") from None
        mime = str(attachment.get("contentType", "text/plain")).split(";")[0]
        if mime.startswith("text/"):
            value = "~".join(esc(line) for line in _text_lines(data))
            out.append(seg("OBX", {1: str(len(out) + 1), 2: "TX", 3: code, 4: "1", 5: value, 11: "F"}))
        else:
            if len(attachment.get("data", "")) > MAX_ED:
                raise OutboundError("the note's attachment is too large for an ED value")
            content_type = "AP"
            kind, _, sub = mime.partition("/")
            value = "^".join(["", esc(kind.upper() if kind in ("image", "audio") else "AP"), esc(sub.upper()),
                              "Base64", attachment.get("data", "")])
            out.append(seg("OBX", {1: str(len(out) + 1), 2: "ED", 3: code, 4: "1", 5: value, 11: "F"}))
    if not out:
        raise OutboundError("the note has no content to send (DocumentReference.content)")
    return content_type, out


def mdm(build: Build, trigger: str) -> list[Seg | Grp]:
    doc = dict(build.change.resource)
    context = as_dict(doc.get("context"))
    encounters = context.get("encounter") or []
    encounter = build.change.resolve(encounters[0]) if encounters else None
    content_type, obx = observations(doc)
    group = "MDM_T02_OBXNTE_SUPPGRP" if build.config.version == "2.5.1" else "MDM_T02_OBSERVATION"
    return [evn(build, trigger), pid(build.change.resolve(doc.get("subject")), build), pv1(encounter),
            txa(build, doc, content_type), *(Grp(group, [o]) for o in obx)]
