"""RDE O11 from a signed MedicationRequest (v2.5.1 chapter 4A, ORC/RXE/RXR/TQ1)."""
from __future__ import annotations

from typing import Any

from mappers.hl7v2.outbound.builder import Grp, OutboundError, Seg, as_dict, seg
from mappers.hl7v2.outbound.context import Build
from mappers.hl7v2.outbound.patient import pid, pv1
from mappers.hl7v2.outbound.values import cwe, dtm, ei, esc, quantity, xcn

# MedicationRequest.status -> ORC-5 order status (HL7 table 0038)
ORDER_STATUS = {"active": "IP", "on-hold": "HD", "cancelled": "CA", "completed": "CM", "stopped": "DC",
                "draft": "SC", "entered-in-error": "CA"}
PRIORITY = {"routine": "R", "urgent": "A", "asap": "A", "stat": "S"}


def orc(build: Build, request: dict[str, Any]) -> Seg:
    cfg = build.config
    placer = next((i.get("value") for i in request.get("identifier") or () if i.get("value")), None)
    requester = request.get("requester")
    return seg("ORC", {1: "NW", 2: ei(placer or request.get("id", ""), cfg.sending_application),
                       5: ORDER_STATUS.get(str(request.get("status")), "IP"), 9: dtm(request.get("authoredOn")),
                       12: xcn(build.change.resolve(requester), as_dict(requester))})


def _dose(dosage: dict[str, Any]) -> tuple[str, str]:
    for rate in dosage.get("doseAndRate") or ():
        if rate.get("doseQuantity"):
            return quantity(rate["doseQuantity"])
        if rate.get("doseRange"):
            return quantity(rate["doseRange"].get("low"))
    return "", ""


def tq1(build: Build, dosage: dict[str, Any], request: dict[str, Any]) -> Seg:
    timing = as_dict(dosage.get("timing"))
    repeat = as_dict(timing.get("repeat"))
    bounds = as_dict(repeat.get("boundsPeriod"))
    code = cwe(timing.get("code"))
    pattern = code.split("^", 1)[0] if code else ""
    if not pattern and repeat.get("frequency") and repeat.get("period") and repeat.get("periodUnit"):
        pattern = f"Q{repeat['period']}{str(repeat['periodUnit']).upper()[:1]}" if repeat["frequency"] == 1 else ""
    return seg("TQ1", {1: "1", 3: esc(pattern), 7: dtm(bounds.get("start")), 8: dtm(bounds.get("end")),
                       9: PRIORITY.get(str(request.get("priority")), "")})


def rxe(request: dict[str, Any], dosage: dict[str, Any], medication: dict[str, Any] | None) -> Seg:
    concept = request.get("medicationCodeableConcept") or (medication or {}).get("code")
    code = cwe(concept)
    if not code:
        raise OutboundError("RXE-2 needs the medication code (medicationCodeableConcept or Medication.code)")
    amount, units = _dose(dosage)
    dispense = as_dict(request.get("dispenseRequest"))
    disp_amount, disp_units = quantity(dispense.get("quantity"))
    return seg("RXE", {2: code, 3: amount or "0", 5: units or "1^unit^UCUM", 7: f"^{esc(dosage['text'])}"
                       if dosage.get("text") else "", 10: disp_amount, 11: disp_units,
                       12: str(dispense.get("numberOfRepeatsAllowed", "")),
                       21: esc(request["note"][0].get("text", ""))[:250] if request.get("note") else ""})


def rxr(dosage: dict[str, Any]) -> Seg:
    route = cwe(dosage.get("route")) or "OTH^Other^HL70162"
    return seg("RXR", {1: route, 2: cwe(dosage.get("site"))})


def rde(build: Build, trigger: str) -> list[Seg | Grp]:
    request = dict(build.change.resource)
    patient = build.change.resolve(request.get("subject"))
    encounter = build.change.resolve(request.get("encounter"))
    medication = build.change.resolve(request.get("medicationReference"))
    dosage = as_dict((request.get("dosageInstruction") or [{}])[0])
    patient_group = Grp("RDE_O11_PATIENT", [pid(patient, build)])
    if encounter:
        patient_group.children.append(Grp("RDE_O11_PATIENT_VISIT", [pv1(encounter)]))
    order = Grp("RDE_O11_ORDER", [orc(build, request), rxe(request, dosage, medication),
                                  Grp("RDE_O11_TIMING_ENCODED", [tq1(build, dosage, request)]), rxr(dosage)])
    return [patient_group, order]
