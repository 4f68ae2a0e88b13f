"""PID, PV1 and EVN from Patient/Encounter: the v2-to-FHIR IG's PID and PV1 maps, read backwards."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mappers.hl7v2.outbound.builder import OutboundError, Seg, seg
from mappers.hl7v2.outbound.context import Build
from mappers.hl7v2.outbound.values import cwe, cx_list, dtm, esc, xad, xpn_list, xtn

GENDER = {"male": "M", "female": "F", "other": "O", "unknown": "U"}
# Encounter.class (v3 ActCode) -> PV1-2 patient class (HL7 table 0004)
PATIENT_CLASS = {"AMB": "O", "VR": "O", "HH": "O", "IMP": "I", "ACUTE": "I", "NONAC": "I", "EMER": "E",
                 "OBSENC": "O", "PRENC": "P", "SS": "O"}


def pid(patient: Mapping[str, Any] | None, build: Build) -> Seg:
    if not patient:
        raise OutboundError("the message needs its Patient (PID), which was not provided")
    identifiers = cx_list(patient.get("identifier"), build.config)
    if not identifiers and patient.get("id"):
        identifiers = f"{esc(patient['id'])}^^^{esc(build.config.sending_application)}^PI"
    if not identifiers:
        raise OutboundError("the Patient has no identifier for PID-3")
    telecom = [t for t in patient.get("telecom") or () if isinstance(t, Mapping) and t.get("value")]
    values: dict[int, str] = {
        1: "1", 3: identifiers, 5: xpn_list(patient.get("name")) or "^", 7: dtm(patient.get("birthDate")),
        8: GENDER.get(patient.get("gender", ""), ""),
        11: "~".join(xad(a) for a in patient.get("address") or () if isinstance(a, Mapping)),
        13: "~".join(xtn(t) for t in telecom if t.get("use") != "work"),
        14: "~".join(xtn(t) for t in telecom if t.get("use") == "work"),
        16: cwe(patient.get("maritalStatus")),
    }
    if patient.get("deceasedDateTime"):
        values[29], values[30] = dtm(patient["deceasedDateTime"]), "Y"
    elif isinstance(patient.get("deceasedBoolean"), bool):
        values[30] = "Y" if patient["deceasedBoolean"] else "N"
    return seg("PID", values)


def pv1(encounter: Mapping[str, Any] | None) -> Seg:
    """PV1-2 from Encounter.class; ``N`` (not applicable) when the message concerns no visit."""
    if not encounter:
        return seg("PV1", {1: "1", 2: "N"})
    code = (encounter.get("class") or {}).get("code", "")
    values = {1: "1", 2: PATIENT_CLASS.get(code, "O")}
    ident = next((i.get("value") for i in encounter.get("identifier") or () if i.get("value")), None)
    if ident or encounter.get("id"):
        values[19] = f"{esc(ident or encounter['id'])}^^^^VN"  # CX-5 identifier type: visit number
    period = encounter.get("period") or {}
    if period.get("start"):
        values[44] = dtm(period["start"])
    if period.get("end"):
        values[45] = dtm(period["end"])
    return seg("PV1", values)


def evn(build: Build, trigger: str) -> Seg:
    return seg("EVN", {1: trigger if build.config.version == "2.5.1" else "", 2: build.now})
