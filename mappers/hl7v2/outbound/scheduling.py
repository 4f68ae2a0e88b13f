"""SIU S12/S14/S15 from an Appointment (v2.5.1 chapter 10; the IG's SCH/AIS/AIL/AIP maps, reversed)."""
from __future__ import annotations

from typing import Any

from mappers.hl7v2.outbound.builder import Grp, Seg, seg
from mappers.hl7v2.outbound.context import Build
from mappers.hl7v2.outbound.patient import pid, pv1
from mappers.hl7v2.outbound.values import cwe, dtm, ei, esc, xcn

# Appointment.status -> SCH-25 filler status code (HL7 table 0278)
FILLER_STATUS = {"proposed": "Pending", "pending": "Pending", "booked": "Booked", "arrived": "Started",
                 "checked-in": "Started", "fulfilled": "Complete", "cancelled": "Cancelled", "noshow": "Noshow",
                 "entered-in-error": "Deleted", "waitlist": "Waitlist"}
V2_0276 = "http://terminology.hl7.org/CodeSystem/v2-0276"


def _status(status: str) -> str:
    code = FILLER_STATUS.get(status, "Pending")
    return f"{code}^{code}^HL70278"


def sch(build: Build, trigger: str) -> Seg:
    appt = build.change.resource
    cfg = build.config
    placer = next((i.get("value") for i in appt.get("identifier") or () if i.get("value")), None)
    practitioner = _practitioners(build)
    contact = xcn(*practitioner[0]) if practitioner else f"^{esc(cfg.sending_application)}"
    reason = appt.get("cancelationReason") if trigger == "S15" else None
    reasons = appt.get("reasonCode") or []
    event_reason = cwe(reason) or (cwe(reasons[0]) if reasons else "") or cwe(appt.get("serviceType", [None])[0]) \
        or f"{trigger}^{'Cancelled' if trigger == 'S15' else 'Scheduled'}"
    appt_reason = ""
    for coding in (appt.get("appointmentType") or {}).get("coding", ()):
        if coding.get("system") == V2_0276:
            appt_reason = cwe(coding)
    start, end = dtm(appt.get("start")), dtm(appt.get("end"))
    minutes = appt.get("minutesDuration")
    timing = "^".join(["", "", f"M{minutes}" if minutes else "", start, end]).rstrip("^") if start else ""
    values = {1: ei(placer or appt.get("id", ""), cfg.sending_application) if placer else "",
              2: ei(appt.get("id", ""), cfg.sending_application), 6: event_reason, 7: appt_reason,
              16: contact, 20: contact, 25: _status(str(appt.get("status", "")))}
    if cfg.version in ("2.5.1", "2.6"):  # SCH-9..11 are withdrawn from 2.7 on: TQ1 carries the timing
        values.update({9: str(minutes) if minutes else "", 10: "min^minutes^UCUM" if minutes else "", 11: timing})
    return seg("SCH", values)


def tq1(build: Build) -> Seg | None:
    """TQ1-6 service duration, TQ1-7 start and TQ1-8 end of the appointment."""
    appt = build.change.resource
    minutes = appt.get("minutesDuration")
    if not appt.get("start") and not minutes:
        return None
    return seg("TQ1", {1: "1", 6: f"{minutes}^min&minutes&UCUM" if minutes else "", 7: dtm(appt.get("start")),
                       8: dtm(appt.get("end"))})


def _practitioners(build: Build) -> list[tuple[dict[str, Any] | None, dict[str, Any]]]:
    out = []
    for part in build.change.resource.get("participant") or ():
        actor = part.get("actor") or {}
        ref = str(actor.get("reference", ""))
        if ref.startswith("Practitioner/") or ref.split("/")[-2:-1] == ["Practitioner"]:
            out.append((build.change.resolve(actor), actor))
    return out


def _by_type(build: Build, rtype: str) -> list[dict[str, Any]]:
    return [p for p in build.change.resource.get("participant") or ()
            if str((p.get("actor") or {}).get("reference", "")).split("/")[-2:-1] == [rtype]]


def resources(build: Build) -> Grp:
    appt = build.change.resource
    start = dtm(appt.get("start"))
    group = Grp("SIU_S12_RESOURCES", [seg("RGS", {1: "1"})])
    for n, service in enumerate(appt.get("serviceType") or [], start=1):
        group.children.append(Grp("SIU_S12_SERVICE", [seg("AIS", {1: str(n), 3: cwe(service), 4: start})]))
    for n, part in enumerate(_by_type(build, "Location"), start=1):
        loc = build.change.resolve(part["actor"]) or {}
        name = esc(loc.get("name") or part["actor"].get("display", "")) or esc(loc.get("id", ""))
        group.children.append(Grp("SIU_S12_LOCATION_RESOURCE", [seg("AIL", {1: str(n), 3: f"^^^{name}",
                                                                             6: start})]))
    for n, (practitioner, actor) in enumerate(_practitioners(build), start=1):
        group.children.append(Grp("SIU_S12_PERSONNEL_RESOURCE", [seg("AIP", {1: str(n), 3: xcn(practitioner, actor),
                                                                              6: start})]))
    return group


def siu(build: Build, trigger: str) -> list[Seg | Grp]:
    patients = _by_type(build, "Patient")
    body: list[Seg | Grp] = [sch(build, trigger)]
    timing = tq1(build)
    if timing is not None:
        body.append(timing)
    if build.change.resource.get("comment"):
        body.append(seg("NTE", {1: "1", 3: esc(build.change.resource["comment"])}))
    for part in patients:
        body.append(Grp("SIU_S12_PATIENT", [pid(build.change.resolve(part["actor"]), build), pv1(None)]))
    body.append(resources(build))
    return body
