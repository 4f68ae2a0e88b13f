"""Apply a state-machine transition to the Appointment + Encounter in one guarded FHIR transaction.

Both PUTs carry ``ifMatch`` on the version that was read, so of two concurrent transitions from the
same version the hub commits one and answers 409/412 to the other (:class:`VisitConflict`); the
Encounter is created inside the same transaction on first arrival. The Encounter records every status
change in ``statusHistory``; ``period.start`` is set once at admit (a rejoin resumes, it never restarts)
and ``period.end`` at finish; the admitting practitioner is added to ``participant``.
"""
from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from smart_app.visits.errors import NotFound
from smart_app.visits.ports import Actor, FhirPort, Resource, etag, guarded_transaction, http_status, ref
from smart_app.visits.states import FHIR_STATUS, Event, State, Transition, fire, state_of

LATE_EXT = "https://telehub.local/fhir/StructureDefinition/provider-running-late-minutes"
VIRTUAL = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR", "display": "virtual"}
PRIMARY_PERFORMER = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                 "code": "PPRF", "display": "primary performer"}]}


@dataclass(frozen=True)
class Visit:
    appointment: Resource
    encounter: Resource | None

    @property
    def id(self) -> str:
        return str(self.appointment["id"])

    @property
    def state(self) -> State:
        return state_of(self.appointment["status"], (self.encounter or {}).get("status"))

    def participant(self, rtype: str) -> str | None:
        for p in self.appointment.get("participant", []):
            reference = (p.get("actor") or {}).get("reference", "")
            if reference.startswith(f"{rtype}/"):
                return str(reference.split("/", 1)[1])
        return None

    @property
    def running_late(self) -> int | None:
        ext = next((e for e in self.appointment.get("extension", []) if e.get("url") == LATE_EXT), None)
        return int(ext["valueInteger"]) if ext else None


def load(hub: FhirPort, appointment_id: str) -> Visit:
    """The Appointment and its (latest) Encounter."""
    try:
        appointment = hub.get(f"Appointment/{appointment_id}")
    except Exception as exc:
        if http_status(exc) in (404, 410):
            raise NotFound(f"no visit Appointment/{appointment_id}") from None
        raise
    encounters = hub.search("Encounter", {"appointment": f"Appointment/{appointment_id}", "_sort": "-_lastUpdated"})
    return Visit(appointment, encounters[0] if encounters else None)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _new_encounter(visit: Visit) -> Resource:
    patient = visit.participant("Patient")
    body: Resource = {"resourceType": "Encounter", "status": "planned", "class": VIRTUAL,
                      "appointment": [{"reference": ref(visit.appointment)}]}
    if patient:
        body["subject"] = {"reference": f"Patient/{patient}"}
    return body


def _encounter_after(visit: Visit, t: Transition, actor: Actor, now: datetime) -> Resource | None:
    target_status = FHIR_STATUS[t.target][1]
    if target_status is None:  # back to booked: an existing Encounter goes back to planned
        target_status = "planned" if visit.encounter else None
    if target_status is None or (visit.encounter is None and t.target in (State.NO_SHOW, State.CANCELLED)):
        return None
    enc = copy.deepcopy(visit.encounter) if visit.encounter else _new_encounter(visit)
    old = enc.get("status")
    if old != target_status:
        history = enc.setdefault("statusHistory", [])
        if history and "end" not in history[-1]["period"]:
            history[-1]["period"]["end"] = _iso(now)
        history.append({"status": target_status, "period": {"start": _iso(now)}})
        enc["status"] = target_status
    if t.event == Event.ADMIT:
        enc.setdefault("period", {}).setdefault("start", _iso(now))
        if actor.practitioner_id:
            _add_participant(enc, actor.practitioner_id, now)
    if t.target == State.FINISHED:
        period = enc.setdefault("period", {})
        period.setdefault("start", _iso(now))
        period["end"] = _iso(now)
        for p in enc.get("participant", []):
            p.setdefault("period", {}).setdefault("end", _iso(now))
    return enc


def _add_participant(enc: Resource, practitioner_id: str, now: datetime) -> None:
    reference = f"Practitioner/{practitioner_id}"
    parts = enc.setdefault("participant", [])
    if not any((p.get("individual") or {}).get("reference") == reference for p in parts):
        parts.append({"type": [PRIMARY_PERFORMER], "individual": {"reference": reference},
                      "period": {"start": _iso(now)}})


def _appointment_after(visit: Visit, t: Transition, minutes_late: int | None) -> Resource:
    appt = copy.deepcopy(visit.appointment)
    appt["status"] = FHIR_STATUS[t.target][0]
    if t.event == Event.RUNNING_LATE:
        exts = [e for e in appt.get("extension", []) if e.get("url") != LATE_EXT]
        appt["extension"] = [*exts, {"url": LATE_EXT, "valueInteger": max(0, int(minutes_late or 0))}]
    return appt


def transition(hub: FhirPort, visit: Visit, event: Event, actor: Actor, *, now: datetime,
               facts: frozenset[str] = frozenset(), minutes_late: int | None = None) -> tuple[Visit, Transition]:
    """Fire ``event`` on the visit as read (its versions are the If-Match guard); return it re-read."""
    t = fire(visit.state, event, actor.role, facts)
    appt = _appointment_after(visit, t, minutes_late)
    enc = _encounter_after(visit, t, actor, now)
    if appt == visit.appointment and enc == visit.encounter:
        return visit, t  # a pure self-loop (reloaded page): nothing to write
    entries: list[dict[str, Any]] = [{"resource": appt, "request": {
        "method": "PUT", "url": ref(visit.appointment), "ifMatch": etag(visit.appointment)}}]
    if enc is not None and visit.encounter is not None:
        entries.append({"resource": enc, "request": {"method": "PUT", "url": ref(visit.encounter),
                                                     "ifMatch": etag(visit.encounter)}})
    elif enc is not None:
        entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": enc,
                        "request": {"method": "POST", "url": "Encounter"}})
    guarded_transaction(hub, {"resourceType": "Bundle", "type": "transaction", "entry": entries})
    return load(hub, visit.id), t
