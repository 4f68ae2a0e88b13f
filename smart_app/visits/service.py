"""The visit use cases: each reads the visit, fires one transition (If-Match guarded), and publishes an event.

Views call these; nothing here knows Flask. Events carry states and ids only (no PHI).
"""
from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from smart_app.visits import chat, consent, documents, machine, recording, summary
from smart_app.visits.errors import ConsentRequired, InvalidTransition, ProviderRefused, VisitConflict, VisitError
from smart_app.visits.events import channel_for
from smart_app.visits.machine import Visit
from smart_app.visits.ports import Actor, EventBus, FhirPort, Resource, etag, http_status
from smart_app.visits.states import TRANSITIONS, TREATMENT_CONSENT, Event, State, no_show_due
from smart_app.visits.video.base import Join, Room, Side, VideoProvider, require_for_visit

ROOM_EXT = "https://telehub.local/fhir/StructureDefinition/video-room"
CHECK_EXT = "https://telehub.local/fhir/StructureDefinition/precall-check"
RECORDING_EXT = "https://telehub.local/fhir/StructureDefinition/recording-started"


@dataclass(frozen=True)
class VisitSettings:
    no_show_after: timedelta = timedelta(minutes=15)
    link_ttl: timedelta = timedelta(hours=24)
    consent_policy_version: str = "2026-01"
    recording_policy_version: str = "2026-01"
    room_ttl: timedelta = timedelta(hours=2)
    real_visits: bool = True  # False only for demo/dev data: then a non-BAA provider is allowed
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def _ext(resource: Resource | None, url: str) -> dict[str, Any] | None:
    return next((e for e in (resource or {}).get("extension", []) if e.get("url") == url), None)


class VisitService:
    def __init__(self, hub: FhirPort, bus: EventBus, video: VideoProvider,
                 settings: VisitSettings | None = None) -> None:
        self.hub, self.bus, self.video = hub, bus, video
        self.settings = settings or VisitSettings()

    def now(self) -> datetime:
        return self.settings.clock()

    # -- reading -----------------------------------------------------------------------------------
    def load(self, visit_id: str) -> Visit:
        return machine.load(self.hub, visit_id)

    def snapshot(self, visit: Visit) -> dict[str, Any]:
        """What both pages show; no PHI (ids, states, the device check)."""
        check = _ext(visit.encounter, CHECK_EXT)
        patient = visit.participant("Patient") or ""
        return {"type": "state", "visit": visit.id, "state": str(visit.state), "runningLate": visit.running_late,
                "precheck": json.loads(check["valueString"]) if check else None,
                "recording": _ext(visit.encounter, RECORDING_EXT) is not None,
                "treatmentConsent": consent.has_treatment_consent(self.hub, patient,
                                                                  self.settings.consent_policy_version),
                "recordingConsent": consent.has_recording_consent(self.hub, patient, visit.id,
                                                                  self.settings.recording_policy_version),
                "recordingAvailable": self.video.supports_recording}

    def publish(self, visit_id: str, event: dict[str, Any]) -> None:
        self.bus.publish(channel_for(visit_id), event)

    # -- transitions -------------------------------------------------------------------------------
    def _facts(self, visit: Visit) -> frozenset[str]:
        patient = visit.participant("Patient")
        ok = bool(patient) and consent.has_treatment_consent(self.hub, str(patient),
                                                             self.settings.consent_policy_version)
        return frozenset({TREATMENT_CONSENT}) if ok else frozenset()

    def fire(self, visit_id: str, event: Event, actor: Actor, *, minutes_late: int | None = None) -> Visit:
        visit = self.load(visit_id)
        facts = self._facts(visit) if event == Event.ADMIT else frozenset()
        try:
            after, _ = machine.transition(self.hub, visit, event, actor, now=self.now(), facts=facts,
                                          minutes_late=minutes_late)
        except VisitConflict:
            # a duplicate (double click, two tabs) that someone else already applied collapses into it;
            # a real conflict (e.g. cancel against arrive) is reported
            again = self.load(visit_id)
            same = TRANSITIONS.get((again.state, event))
            if same is None or same.target != again.state or event == Event.RUNNING_LATE:
                raise
            return again
        if event == Event.ADMIT:
            after = self._ensure_room(after)
        if event == Event.FINISH:
            self._close(after)
        self.publish(visit_id, {**self.snapshot(after), "event": str(event)})
        return after

    def overdue(self) -> list[str]:
        """Booked visits whose start is more than the no-show timeout ago (for a periodic job)."""
        before = (self.now() - self.settings.no_show_after).isoformat(timespec="seconds")
        return [a["id"] for a in self.hub.search("Appointment", [("status", "booked"), ("date", f"le{before}")])]

    def sweep_no_shows(self, visit_ids: list[str] | None = None) -> list[str]:
        """Mark booked visits whose patient never arrived within the timeout; returns the ones marked."""
        marked = []
        for vid in self.overdue() if visit_ids is None else visit_ids:
            visit = self.load(vid)
            start = visit.appointment.get("start")
            if start and no_show_due(visit.state, datetime.fromisoformat(start), self.now(),
                                     self.settings.no_show_after):
                try:
                    self.fire(vid, Event.NO_SHOW, Actor("system"))
                    marked.append(vid)
                except (VisitConflict, InvalidTransition):
                    continue  # the patient arrived meanwhile: they win
        return marked

    # -- the pre-call check ------------------------------------------------------------------------
    def record_precheck(self, visit_id: str, result: dict[str, Any]) -> None:
        clean = {k: result.get(k) for k in ("camera", "microphone", "bandwidthKbps", "rttMs", "browser")}
        self._patch_encounter(visit_id, CHECK_EXT, {"valueString": json.dumps(clean, sort_keys=True)})
        self.publish(visit_id, self.snapshot(self.load(visit_id)))

    def _patch_encounter(self, visit_id: str, url: str, value: dict[str, Any]) -> Resource:
        for _ in range(3):
            visit = self.load(visit_id)
            if visit.encounter is None:
                raise InvalidTransition("the patient is not in the waiting room")
            body = copy.deepcopy(visit.encounter)
            body["extension"] = [e for e in body.get("extension", []) if e.get("url") != url] + [{"url": url, **value}]
            try:
                return self.hub.update(body, if_match=etag(visit.encounter))
            except Exception as exc:
                if http_status(exc) not in (409, 412):
                    raise
        raise VisitConflict("the visit is changing quickly; try again")

    # -- video -------------------------------------------------------------------------------------
    def _ensure_room(self, visit: Visit) -> Visit:
        if _ext(visit.encounter, ROOM_EXT):
            return visit  # resume: the same room
        require_for_visit(self.video, real_visit=self.settings.real_visits)
        expires = int((self.now() + self.settings.room_ttl).timestamp())
        room = self.video.create_room(f"visit-{uuid.uuid4().hex[:20]}", expires_at=expires)
        stored = {"provider": room.provider, "id": room.room_id, "url": room.url, "data": dict(room.data),
                  "exp": expires}
        self._patch_encounter(visit.id, ROOM_EXT, {"valueString": json.dumps(stored)})
        return self.load(visit.id)

    def room(self, visit: Visit) -> tuple[Room, int] | None:
        ext = _ext(visit.encounter, ROOM_EXT)
        if not ext:
            return None
        raw = json.loads(ext["valueString"])
        return Room(raw["provider"], raw["id"], raw.get("url", ""), raw.get("data", {})), int(raw["exp"])

    def join(self, visit_id: str, actor: Actor) -> Join:
        visit = self.load(visit_id)
        if visit.state not in (State.IN_PROGRESS, State.ON_LEAVE):
            raise InvalidTransition("the visit has not started")
        require_for_visit(self.video, real_visit=self.settings.real_visits)
        found = self.room(visit)
        if found is None:
            raise ProviderRefused("the visit has no video room")
        room, exp = found
        key = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{room.key()}/{actor.role}"))  # opaque, stable per side
        side: Side = "provider" if actor.role == "provider" else "patient"
        return self.video.join(room, participant_key=key, side=side, expires_at=exp,
                               record=_ext(visit.encounter, RECORDING_EXT) is not None)

    def start_recording(self, visit_id: str, actor: Actor) -> None:
        visit = self.load(visit_id)
        if actor.role != "provider":
            raise InvalidTransition("only the clinician starts recording")
        if visit.state != State.IN_PROGRESS:
            raise InvalidTransition("recording starts during the visit")
        consent.require_recording_consent(self.hub, visit.participant("Patient") or "", visit.id,
                                          self.settings.recording_policy_version)
        if not self.video.supports_recording:
            raise ProviderRefused(f"video provider {self.video.name!r} does not record")
        self._patch_encounter(visit_id, RECORDING_EXT, {"valueDateTime": self.now().isoformat(timespec="seconds")})
        self.publish(visit_id, self.snapshot(self.load(visit_id)))

    def save_recording(self, visit_id: str, actor: Actor, *, content_type: str, data: bytes) -> Resource:
        """Store the clinician's browser recording (local provider), only if it was started with consent."""
        visit = self.load(visit_id)
        started = _ext(visit.encounter, RECORDING_EXT)
        if actor.role != "provider" or started is None or visit.encounter is None:
            raise InvalidTransition("no recording was started for this visit")
        patient = visit.participant("Patient") or ""
        consent.require_recording_consent(self.hub, patient, visit.id, self.settings.recording_policy_version)
        media = recording.store(self.hub, encounter_id=str(visit.encounter["id"]), patient_id=patient,
                                operator=f"Practitioner/{actor.practitioner_id or visit.participant('Practitioner')}",
                                content_type=content_type, data=data, started=str(started["valueDateTime"]),
                                now=self.now())
        self.publish(visit_id, {"type": "document", "id": media["id"]})
        return media

    def _close(self, visit: Visit) -> None:
        found = self.room(visit)
        if found:
            self.video.end_room(found[0])
        if visit.encounter and summary.find(self.hub, visit.encounter["id"]) is None:
            self.write_summary(visit, note="")

    # -- consent -----------------------------------------------------------------------------------
    def give_treatment_consent(self, visit_id: str, actor: Actor) -> Resource:
        patient = self._patient_of(visit_id, actor)
        found = consent.record_treatment_consent(self.hub, patient, self.settings.consent_policy_version, self.now())
        self.publish(visit_id, self.snapshot(self.load(visit_id)))
        return found

    def give_recording_consent(self, visit_id: str, actor: Actor) -> Resource:
        patient = self._patient_of(visit_id, actor)
        found = consent.record_recording_consent(self.hub, patient, visit_id, self.settings.recording_policy_version,
                                                 self.now())
        self.publish(visit_id, self.snapshot(self.load(visit_id)))
        return found

    def _patient_of(self, visit_id: str, actor: Actor) -> str:
        patient = self.load(visit_id).participant("Patient")
        if actor.role != "patient" or not patient or actor.patient_id != patient:
            raise ConsentRequired("only the patient gives consent, in their own visit")
        return patient

    # -- chat and documents ------------------------------------------------------------------------
    def _live(self, visit_id: str) -> tuple[Visit, str]:
        visit = self.load(visit_id)
        if visit.encounter is None or visit.state not in (State.WAITING, State.IN_PROGRESS, State.ON_LEAVE):
            raise InvalidTransition("chat and sharing are open during the visit")
        return visit, visit.participant("Patient") or ""

    def _parties(self, visit: Visit, actor: Actor) -> tuple[str, str]:
        patient = f"Patient/{visit.participant('Patient')}"
        practitioner = f"Practitioner/{visit.participant('Practitioner')}"
        return (patient, practitioner) if actor.role == "patient" else (practitioner, patient)

    def send_chat(self, visit_id: str, actor: Actor, text: str) -> Resource:
        visit, patient = self._live(visit_id)
        sender, recipient = self._parties(visit, actor)
        msg = chat.post(self.hub, str(visit.encounter["id"]) if visit.encounter else "", patient, sender,
                        recipient, text, self.now())
        self.publish(visit_id, {"type": "chat", "id": msg["id"]})
        return msg

    def share_document(self, visit_id: str, actor: Actor, *, kind: str, title: str, content_type: str,
                       data: bytes) -> Resource:
        visit, patient = self._live(visit_id)
        author, _ = self._parties(visit, actor)
        doc = documents.share(self.hub, encounter_id=str((visit.encounter or {})["id"]), patient_id=patient,
                              author=author, kind=kind, title=title, content_type=content_type, data=data,
                              now=self.now())
        self.publish(visit_id, {"type": "document", "id": doc["id"]})
        return doc

    # -- after the visit ---------------------------------------------------------------------------
    def write_summary(self, visit: Visit, note: str) -> Resource:
        if visit.encounter is None:
            raise VisitError("no encounter to summarise")
        enc_id = str(visit.encounter["id"])
        return summary.write(self.hub, visit.encounter, visit.participant("Patient") or "",
                             messages=len(chat.history(self.hub, enc_id)),
                             documents=len(documents.shared_in(self.hub, enc_id)), note=note, now=self.now())

