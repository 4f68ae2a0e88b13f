"""ORU R01 from a DiagnosticReport and its Observations, or from one Observation (v2.5.1 chapter 7)."""
from __future__ import annotations

from typing import Any

from mappers.hl7v2.outbound.builder import Grp, OutboundError, Seg, as_dict, seg
from mappers.hl7v2.outbound.context import Build
from mappers.hl7v2.outbound.patient import pid, pv1
from mappers.hl7v2.outbound.values import cwe, dtm, ei, esc, quantity

# FHIR status -> OBR-25 (HL7 table 0123) and OBX-11 (HL7 table 0085)
REPORT_STATUS = {"registered": "O", "partial": "P", "preliminary": "P", "final": "F", "amended": "C",
                 "corrected": "C", "appended": "C", "cancelled": "X", "entered-in-error": "X"}
RESULT_STATUS = {"registered": "I", "preliminary": "P", "final": "F", "amended": "C", "corrected": "C",
                 "cancelled": "X", "entered-in-error": "W"}
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"


def _effective(resource: dict[str, Any]) -> str:
    return dtm(resource.get("effectiveDateTime") or as_dict(resource.get("effectivePeriod")).get("start"))


def value(obs: dict[str, Any]) -> tuple[str, str, str]:
    """OBX-2 value type, OBX-5 value, OBX-6 units."""
    if "valueQuantity" in obs:
        number, units = quantity(obs["valueQuantity"])
        comparator = obs["valueQuantity"].get("comparator")
        if comparator:
            return "SN", f"{esc(comparator)}^{number}", units
        return "NM", number, units
    if "valueCodeableConcept" in obs:
        return "CWE", cwe(obs["valueCodeableConcept"]), ""
    if "valueString" in obs:
        return "ST", esc(obs["valueString"]), ""
    if "valueBoolean" in obs:
        return "ST", "true" if obs["valueBoolean"] else "false", ""
    if "valueInteger" in obs:
        return "NM", str(obs["valueInteger"]), ""
    if "valueDateTime" in obs:
        return "DTM", dtm(obs["valueDateTime"]), ""
    if "valueTime" in obs:
        return "TM", str(obs["valueTime"]).replace(":", ""), ""
    if "valueRange" in obs:
        low, units = quantity(obs["valueRange"].get("low"))
        high, _ = quantity(obs["valueRange"].get("high"))
        return "SN", f"^{low}^-^{high}", units
    return "", "", ""


def obx(obs: dict[str, Any], n: int) -> Seg:
    kind, val, units = value(obs)
    ranges = [r for r in obs.get("referenceRange") or () if isinstance(r, dict)]
    ref_range = ""
    if ranges:
        low, _ = quantity(ranges[0].get("low"))
        high, _ = quantity(ranges[0].get("high"))
        ref_range = esc(ranges[0].get("text", "")) or (f"{low}-{high}" if low or high else "")
    interp = "~".join(c.split("^", 1)[0] for c in (cwe(i) for i in obs.get("interpretation") or ()) if c)
    code = cwe(obs.get("code"))
    if not code:
        raise OutboundError("an Observation without a code cannot become an OBX (OBX-3)")
    return seg("OBX", {1: str(n), 2: kind, 3: code, 4: "1", 5: val, 6: units, 7: ref_range, 8: interp,
                       11: RESULT_STATUS.get(str(obs.get("status")), "F"), 14: _effective(obs),
                       19: dtm(obs.get("issued"))})


def obr(build: Build, report: dict[str, Any]) -> Seg:
    cfg = build.config
    based_on = [build.change.resolve(b) or {} for b in report.get("basedOn") or ()]
    placer = next((i.get("value") for b in based_on for i in b.get("identifier") or () if i.get("value")), "")
    filler = next((i.get("value") for i in report.get("identifier") or () if i.get("value")), report.get("id", ""))
    section = next((c.get("code", "") for cat in report.get("category") or ()
                    for c in cat.get("coding", ()) if c.get("system") == V2_0074), "")
    code = cwe(report.get("code"))
    if not code:
        raise OutboundError("OBR-4 needs the report's code")
    return seg("OBR", {1: "1", 2: ei(placer, cfg.sending_application) if placer else "",
                       3: ei(filler, cfg.sending_application), 4: code, 7: _effective(report),
                       22: dtm(report.get("issued")), 24: esc(section),
                       25: REPORT_STATUS.get(str(report.get("status")), "F")})


def oru(build: Build, trigger: str) -> list[Seg | Grp]:
    focus = dict(build.change.resource)
    if focus.get("resourceType") == "DiagnosticReport":
        observations = [o for o in (build.change.resolve(r) for r in focus.get("result") or ()) if o]
        if len(observations) != len(focus.get("result") or ()):
            raise OutboundError("every DiagnosticReport.result Observation must be provided")
    else:
        observations = [focus]
    patient = build.change.resolve(focus.get("subject"))
    encounter = build.change.resolve(focus.get("encounter"))
    patient_group = Grp("ORU_R01_PATIENT", [pid(patient, build)])
    if encounter:
        patient_group.children.append(Grp("ORU_R01_VISIT", [pv1(encounter)]))
    order = Grp("ORU_R01_ORDER_OBSERVATION", [obr(build, focus)])
    if focus.get("conclusion"):
        order.children.append(seg("NTE", {1: "1", 3: esc(focus["conclusion"])}))
    order.children += [Grp("ORU_R01_OBSERVATION", [obx(o, n)]) for n, o in enumerate(observations, start=1)]
    return [Grp("ORU_R01_PATIENT_RESULT", [patient_group, order])]
