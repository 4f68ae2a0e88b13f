"""The scheduling use cases as one object the web layer calls: booking + reminders, with a clock.

Views stay thin (parse, call, render); this is where "book" also plans the reminders and
"cancel"/"reschedule" withdraw or re-plan them. Settings come in; nothing is global.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from smart_app.scheduling import booking, directory, reminders
from smart_app.scheduling.availability import Availability
from smart_app.scheduling.booking import Booked, BookedBy
from smart_app.scheduling.compacts import CompactRules, default_rules
from smart_app.scheduling.ports import FhirPort, Resource
from smart_app.scheduling.reminders import ReminderPolicy
from smart_app.scheduling.schedules import RegenReport, rules_of, save_availability


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class SchedulingService:
    hub: FhirPort
    compacts: CompactRules = field(default_factory=default_rules)
    reminder_policy: ReminderPolicy = field(default_factory=ReminderPolicy)
    clock: Callable[[], datetime] = utcnow
    on_demand_window: timedelta = timedelta(hours=24)

    def now(self) -> datetime:
        return self.clock()

    def save_availability(self, practitioner_id: str, rules: Availability) -> tuple[Resource, RegenReport]:
        return save_availability(self.hub, practitioner_id, rules, self.now())

    def book(self, slot_id: str, patient_id: str, *, booked_by: BookedBy = "front-desk",
             attested_state: str | None = None) -> Booked:
        result = booking.book(self.hub, slot_id, patient_id, now=self.now(), booked_by=booked_by,
                              attested_state=attested_state, compacts=self.compacts)
        self._remind(result, patient_id)
        return result

    def on_demand(self, patient_id: str, *, modality: str = "video", booked_by: BookedBy = "patient",
                  attested_state: str | None = None) -> Booked:
        result = directory.next_available(self.hub, patient_id, now=self.now(), modality=modality,
                                          within=self.on_demand_window, booked_by=booked_by,
                                          attested_state=attested_state, compacts=self.compacts)
        self._remind(result, patient_id)
        return result

    def reschedule(self, appointment_id: str, slot_id: str, *, attested_state: str | None = None) -> Booked:
        result = booking.reschedule(self.hub, appointment_id, slot_id, now=self.now(),
                                    attested_state=attested_state, compacts=self.compacts)
        reminders.revoke_reminders(self.hub, appointment_id)
        self._remind(result, booking.participant_id(result.appointment, "Patient"))
        return result

    def cancel(self, appointment_id: str, reason: str, note: str = "") -> Resource:
        cancelled = booking.cancel(self.hub, appointment_id, reason, now=self.now(), note=note)
        reminders.revoke_reminders(self.hub, appointment_id)
        return cancelled

    def no_show(self, appointment_id: str) -> Resource:
        return booking.no_show(self.hub, appointment_id, now=self.now())

    def _remind(self, result: Booked, patient_id: str) -> None:
        """Plan the visit's reminders (provider name and zone only matter for detailed reminders)."""
        rules = rules_of(self.hub.get(result.slot["schedule"]["reference"]))
        practitioner_id = booking.participant_id(result.appointment, "Practitioner")
        provider = directory.display_name(booking.read(self.hub, f"Practitioner/{practitioner_id}"))
        reminders.schedule_reminders(self.hub, result.appointment, f"Patient/{patient_id}", self.reminder_policy,
                                     self.now(), provider=provider, zone=rules.zone if rules else None)
