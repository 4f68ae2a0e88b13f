"""Provider search and on-demand matching that only ever offer providers licensed where the patient is."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from smart_app.scheduling.booking import Booked, BookedBy, book, read
from smart_app.scheduling.codes import MODALITY_SYSTEM
from smart_app.scheduling.compacts import CompactRules, default_rules
from smart_app.scheduling.errors import BookingRefused, NotFound, SlotUnavailable
from smart_app.scheduling.jurisdiction import patient_location
from smart_app.scheduling.licensure import Decision, licences_of, may_practise
from smart_app.scheduling.ports import FhirPort, Resource
from smart_app.scheduling.schedules import practitioner_id_of, rules_of, schedule_slots
from smart_app.scheduling.slots import FREE, fhir_instant


@dataclass(frozen=True)
class ProviderOption:
    practitioner: Resource
    schedule: Resource
    decision: Decision

    @property
    def name(self) -> str:
        return display_name(self.practitioner)


def display_name(practitioner: Resource) -> str:
    for n in practitioner.get("name", []) or []:
        if n.get("text"):
            return str(n["text"])
        parts = [*(n.get("prefix") or []), *(n.get("given") or []), n.get("family", "")]
        text = " ".join(p for p in parts if p)
        if text:
            return text
    return f"Practitioner {practitioner.get('id')}"


def patient_state(patient: Resource, when: datetime, attested: str | None, compacts: CompactRules) -> str:
    location = patient_location(patient, when.date(), attested, compacts.jurisdiction_names())
    if location is None:
        raise BookingRefused("The patient's state is unknown: add a current home address to the registration or "
                             "record where the patient will be at check-in.")
    return location.state


def providers_for(hub: FhirPort, patient: Resource, when: datetime, *, attested: str | None = None,
                  compacts: CompactRules | None = None) -> tuple[list[ProviderOption], list[ProviderOption]]:
    """(licensed, not licensed) providers with an active schedule, for where the patient is ``when``."""
    compacts = compacts or default_rules()
    state = patient_state(patient, when, attested, compacts)
    licensed: list[ProviderOption] = []
    refused: list[ProviderOption] = []
    for schedule in hub.search("Schedule", {"active": "true", "_count": "200"}):
        try:
            practitioner = read(hub, f"Practitioner/{practitioner_id_of(schedule)}")
        except NotFound:  # a schedule for a deleted provider is simply not offered
            continue
        if practitioner.get("active") is False:
            continue
        rules = rules_of(schedule)
        day = when.astimezone(rules.zone).date() if rules else when.date()
        decision = may_practise(licences_of(practitioner), state, day, compacts)
        (licensed if decision.allowed else refused).append(ProviderOption(practitioner, schedule, decision))
    return sorted(licensed, key=_by_name), sorted(refused, key=_by_name)


def _by_name(option: ProviderOption) -> str:
    return option.name


def free_slots(hub: FhirPort, schedule_id: str, now: datetime, days: int = 14,
               modality: str | None = None) -> list[Resource]:
    slots = schedule_slots(hub, schedule_id, now, now + timedelta(days=days), status=FREE)
    return [s for s in slots if modality is None or _has_modality(s, modality)]


def _has_modality(slot: Resource, modality: str) -> bool:
    return any(c.get("system") == MODALITY_SYSTEM and c.get("code") == modality
               for st in slot.get("serviceType", []) or [] for c in st.get("coding", []) or [])


def next_available(hub: FhirPort, patient_id: str, *, now: datetime, modality: str = "video",
                   within: timedelta = timedelta(hours=24), booked_by: BookedBy = "patient",
                   attested_state: str | None = None, compacts: CompactRules | None = None,
                   max_attempts: int = 10) -> Booked:
    """On-demand: book the earliest free slot of any provider licensed where the patient is."""
    compacts = compacts or default_rules()
    patient = read(hub, f"Patient/{patient_id}")
    licensed, _ = providers_for(hub, patient, now, attested=attested_state, compacts=compacts)
    if not licensed:
        state = patient_state(patient, now, attested_state, compacts)
        raise BookingRefused(f"No provider is licensed to see patients located in {state}.")
    candidates: list[tuple[str, Any]] = []
    for option in licensed:
        for slot in free_slots(hub, option.schedule["id"], now, days=max(1, within.days + 1), modality=modality):
            if slot["start"] < fhir_instant(now + within):
                candidates.append((slot["start"], slot))
    attempts = 0
    for _, slot in sorted(candidates, key=lambda c: c[0]):
        if attempts >= max_attempts:
            break
        attempts += 1
        try:
            return book(hub, slot["id"], patient_id, now=now, booked_by=booked_by, attested_state=attested_state,
                        compacts=compacts)
        except SlotUnavailable:
            continue  # someone else won this one: try the next earliest
    hours = int(within.total_seconds() // 3600)
    raise BookingRefused(f"No licensed provider has a free {modality} slot in the next {hours} hours.")
