"""Booking, rescheduling, cancelling and no-shows as FHIR writes that cannot double-book.

Appointment and Slot states follow R4: a booked Appointment holds a ``busy`` Slot; slots of the
same Schedule whose buffered times overlap it become ``busy-unavailable``; cancelling frees them
again; a no-show keeps the slot busy (the time has passed). Every write is one transaction
Bundle in which each Slot update carries ``If-Match`` on the version we read, together with the
Appointment create/update: two people booking one slot (or overlapping ones) at the same moment
→ the hub commits exactly one transaction, the other gets 412 and becomes :class:`SlotUnavailable`.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from smart_app.scheduling.availability import Availability
from smart_app.scheduling.codes import ATTESTED_LOCATION_EXT, BOOKED_BY_EXT, CANCEL_REASON_SYSTEM, CANCEL_REASONS
from smart_app.scheduling.compacts import CompactRules, default_rules
from smart_app.scheduling.errors import (
    BookingRefused,
    InvalidInput,
    InvalidTransition,
    NotFound,
    NotLicensed,
    SlotUnavailable,
)
from smart_app.scheduling.jurisdiction import patient_location
from smart_app.scheduling.licensure import Decision, licences_of, may_practise
from smart_app.scheduling.ports import FhirPort, Resource, etag, http_status
from smart_app.scheduling.schedules import practitioner_id_of, rules_of, schedule_slots
from smart_app.scheduling.slots import BUSY, FREE, UNAVAILABLE, instant, overlaps

BookedBy = Literal["patient", "front-desk"]
T = TypeVar("T")
MARGIN = timedelta(days=1)  # wider than the longest visit + buffers


@dataclass(frozen=True)
class Booked:
    appointment: Resource
    slot: Resource
    decision: Decision


# -- reading -------------------------------------------------------------------------------------------
def read(hub: FhirPort, path: str) -> Resource:
    """GET that turns the client's 404/410 into :class:`NotFound` (naming only the reference)."""
    try:
        return hub.get(path)
    except Exception as exc:
        if http_status(exc) in (404, 410):
            raise NotFound(f"{path} does not exist") from None
        raise


def _writes(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except Exception as exc:
        if http_status(exc) in (409, 412):
            raise SlotUnavailable("the slot was just taken or changed by someone else; pick another") from None
        raise


@dataclass(frozen=True)
class ProviderContext:
    schedule: Resource
    rules: Availability | None
    practitioner: Resource


def provider_of_slot(hub: FhirPort, slot: Resource) -> ProviderContext:
    schedule = read(hub, slot["schedule"]["reference"])
    practitioner = read(hub, f"Practitioner/{practitioner_id_of(schedule)}")
    if practitioner.get("active") is False or schedule.get("active") is False:
        raise BookingRefused("This provider is not taking bookings at the moment.")
    return ProviderContext(schedule, rules_of(schedule), practitioner)


def licence_decision(practitioner: Resource, patient: Resource, start: datetime, rules: Availability | None,
                     attested_state: str | None, compacts: CompactRules) -> Decision:
    """Where the patient is at the visit, and whether this provider may practise there then."""
    day = start.astimezone(rules.zone).date() if rules else start.date()
    names = compacts.jurisdiction_names()
    location = patient_location(patient, day, attested_state, names)
    if location is None:
        raise BookingRefused("The patient's state is unknown: add a current home address to the registration or "
                             "record where the patient will be at check-in.")
    return may_practise(licences_of(practitioner), location.state, day, compacts)


# -- the slot states after a change (pure) -------------------------------------------------------------
def settle(window: Iterable[Resource], busy_ids: set[str], rules: Availability | None) -> list[Resource]:
    """Slots whose status must change so that exactly the generated slots overlapping a busy one are
    ``busy-unavailable`` and the rest of the unbooked ones ``free``. ``busy_ids``: booked after the change."""
    slots = list(window)
    busy = [s for s in slots if s["id"] in busy_ids]
    changed = []
    for slot in slots:
        if slot["id"] in busy_ids:
            want = BUSY
        elif slot.get("status") in (FREE, UNAVAILABLE, BUSY):  # BUSY here: the booking being released
            want = UNAVAILABLE if any(overlaps(slot, b, rules) for b in busy) else FREE
        else:
            continue
        if slot.get("status") != want:
            changed.append({**slot, "status": want})
    return changed


def _window(hub: FhirPort, slot: Resource) -> list[Resource]:
    schedule_id = slot["schedule"]["reference"].split("/", 1)[1]
    return schedule_slots(hub, schedule_id, instant(slot["start"]) - MARGIN, instant(slot["end"]) + MARGIN)


def _slot_puts(changed: Iterable[Resource]) -> list[Resource]:
    return [{"resource": _clean(s), "request": {"method": "PUT", "url": f"Slot/{s['id']}", "ifMatch": etag(s)}}
            for s in changed]


def _clean(resource: Resource) -> Resource:
    """The body to PUT back: server-managed meta dropped, tags kept."""
    body = {k: v for k, v in resource.items() if k != "meta"}
    tags = (resource.get("meta") or {}).get("tag")
    if tags:
        body["meta"] = {"tag": tags}
    return body


def _transaction(hub: FhirPort, entries: list[Resource]) -> list[Resource]:
    reply = _writes(lambda: hub.transaction({"resourceType": "Bundle", "type": "transaction", "entry": entries}))
    return [e.get("resource") or {} for e in reply.get("entry", [])]


def _busy_ids(window: list[Resource], minus: Iterable[str] = (), plus: Iterable[str] = ()) -> set[str]:
    """Ids of the booked slots once the change is applied."""
    return ({s["id"] for s in window if s.get("status") == BUSY} - set(minus)) | set(plus)


# -- booking ---------------------------------------------------------------------------------------------
def book(hub: FhirPort, slot_id: str, patient_id: str, *, now: datetime, booked_by: BookedBy = "front-desk",
         attested_state: str | None = None, compacts: CompactRules | None = None, attempts: int = 3) -> Booked:
    """Book a free future slot for a patient, if the provider is licensed where the patient is.

    A lost If-Match race is retried while the slot itself is still free: a booking of a
    *neighbouring* slot may have changed a slot both wanted to mark unavailable (a false conflict).
    """
    compacts = compacts or default_rules()
    for attempt in range(attempts):
        try:
            return _book_once(hub, slot_id, patient_id, now, booked_by, attested_state, compacts)
        except SlotUnavailable:
            if attempt == attempts - 1 or read(hub, f"Slot/{slot_id}").get("status") != FREE:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _conflicting(window: list[Resource], slot: Resource, rules: Availability | None,
                 ignore: Iterable[str] = ()) -> bool:
    """Another booked slot overlaps this one (only possible if slots were edited outside this module)."""
    skip = {slot["id"], *ignore}
    return any(s["id"] not in skip and s.get("status") == BUSY and overlaps(s, slot, rules) for s in window)


def _book_once(hub: FhirPort, slot_id: str, patient_id: str, now: datetime, booked_by: BookedBy,
               attested_state: str | None, compacts: CompactRules) -> Booked:
    slot = read(hub, f"Slot/{slot_id}")
    if slot.get("status") != FREE:
        raise SlotUnavailable("this slot is no longer free; pick another")
    start = instant(slot["start"])
    if start <= now:
        raise BookingRefused("This slot has already started; pick a later one.")
    provider = provider_of_slot(hub, slot)
    patient = read(hub, f"Patient/{patient_id}")
    decision = licence_decision(provider.practitioner, patient, start, provider.rules, attested_state, compacts)
    if not decision.allowed:
        raise NotLicensed(decision.reason)
    window = _window(hub, slot)
    if _conflicting(window, slot, provider.rules):
        raise SlotUnavailable("this time overlaps a visit already booked with this provider; pick another")
    changed = settle(window, _busy_ids(window, plus={slot_id}), provider.rules)
    if not any(s["id"] == slot_id for s in changed):  # the search saw an older state than the read
        raise SlotUnavailable("this slot is no longer free; pick another")
    appointment = appointment_body(slot, patient_id, provider.practitioner["id"], now, booked_by,
                                   attested_state and decision.state)
    full_url = f"urn:uuid:{uuid.uuid4()}"
    entries = [*_slot_puts(changed),
               {"fullUrl": full_url, "resource": appointment, "request": {"method": "POST", "url": "Appointment"}}]
    written = _transaction(hub, entries)
    booked_slot = next((r for r in written if r.get("resourceType") == "Slot" and r.get("id") == slot_id), slot)
    created = next(r for r in written if r.get("resourceType") == "Appointment")
    return Booked(created, booked_slot, decision)


def appointment_body(slot: Resource, patient_id: str, practitioner_id: str, now: datetime, booked_by: BookedBy,
                     attested_state: str | None) -> Resource:
    start, end = instant(slot["start"]), instant(slot["end"])
    body: Resource = {
        "resourceType": "Appointment",
        "status": "booked",
        "serviceType": slot.get("serviceType", []),
        "start": slot["start"], "end": slot["end"],
        "minutesDuration": int((end - start).total_seconds() // 60),
        "slot": [{"reference": f"Slot/{slot['id']}"}],
        "created": now.date().isoformat(),
        "participant": [
            {"actor": {"reference": f"Patient/{patient_id}"}, "required": "required", "status": "accepted"},
            {"actor": {"reference": f"Practitioner/{practitioner_id}"}, "required": "required",
             "status": "accepted"},
        ],
        "extension": [{"url": BOOKED_BY_EXT, "valueCode": booked_by}],
    }
    if slot.get("appointmentType"):
        body["appointmentType"] = slot["appointmentType"]
    if attested_state:
        body["extension"].append({"url": ATTESTED_LOCATION_EXT, "valueCode": attested_state})
    return body


# -- changes to a booked appointment ------------------------------------------------------------------
def participant_id(appointment: Resource, rtype: str) -> str:
    for p in appointment.get("participant", []) or []:
        reference = str((p.get("actor") or {}).get("reference", ""))
        if reference.startswith(f"{rtype}/"):
            return reference.split("/", 1)[1]
    raise NotFound(f"Appointment/{appointment.get('id')} has no {rtype} participant")


def _booked_slot(hub: FhirPort, appointment: Resource) -> Resource | None:
    slots = appointment.get("slot") or []
    return read(hub, slots[0]["reference"]) if slots else None


def reschedule(hub: FhirPort, appointment_id: str, new_slot_id: str, *, now: datetime,
               attested_state: str | None = None, compacts: CompactRules | None = None) -> Booked:
    """Move a booked visit to another free slot (same or another provider) in one transaction."""
    compacts = compacts or default_rules()
    appointment = read(hub, f"Appointment/{appointment_id}")
    if appointment.get("status") != "booked":
        raise InvalidTransition(f"only a booked visit can be rescheduled (this one is {appointment.get('status')})")
    if instant(appointment["start"]) <= now:
        raise InvalidTransition("this visit has already started; it cannot be rescheduled")
    new_slot = read(hub, f"Slot/{new_slot_id}")
    if new_slot.get("status") != FREE:
        raise SlotUnavailable("the new slot is no longer free; pick another")
    start = instant(new_slot["start"])
    if start <= now:
        raise BookingRefused("This slot has already started; pick a later one.")
    provider = provider_of_slot(hub, new_slot)
    patient_id = participant_id(appointment, "Patient")
    patient = read(hub, f"Patient/{patient_id}")
    decision = licence_decision(provider.practitioner, patient, start, provider.rules, attested_state, compacts)
    if not decision.allowed:
        raise NotLicensed(decision.reason)
    old_slot = _booked_slot(hub, appointment)
    changed: dict[str, Resource] = {}
    old_ids = {old_slot["id"]} if old_slot else set()
    windows = [_window(hub, new_slot)] + ([_window(hub, old_slot)] if old_slot else [])
    seen: dict[str, Resource] = {}
    for window in windows:
        for s in window:
            seen.setdefault(s["id"], s)
    merged = list(seen.values())
    if _conflicting(merged, new_slot, provider.rules, ignore=old_ids):
        raise SlotUnavailable("this time overlaps a visit already booked with this provider; pick another")
    for s in settle(merged, _busy_ids(merged, minus=old_ids, plus={new_slot_id}), provider.rules):
        changed[s["id"]] = s
    if new_slot_id not in changed:
        raise SlotUnavailable("the new slot is no longer free; pick another")
    updated = _clean(appointment)
    practitioner_ref = f"Practitioner/{provider.practitioner['id']}"
    updated.update({
        "start": new_slot["start"], "end": new_slot["end"], "slot": [{"reference": f"Slot/{new_slot_id}"}],
        "serviceType": new_slot.get("serviceType", []),
        "minutesDuration": int((instant(new_slot["end"]) - start).total_seconds() // 60),
        "participant": [p if not str((p.get("actor") or {}).get("reference", "")).startswith("Practitioner/")
                        else {**p, "actor": {"reference": practitioner_ref}}
                        for p in appointment.get("participant", [])],
    })
    if new_slot.get("appointmentType"):
        updated["appointmentType"] = new_slot["appointmentType"]
    entries = [*_slot_puts(changed.values()),
               {"resource": updated, "request": {"method": "PUT", "url": f"Appointment/{appointment_id}",
                                                 "ifMatch": etag(appointment)}}]
    written = _transaction(hub, entries)
    result = next(r for r in written if r.get("resourceType") == "Appointment")
    slot = next((r for r in written if r.get("id") == new_slot_id), new_slot)
    return Booked(result, slot, decision)


def cancel(hub: FhirPort, appointment_id: str, reason: str, *, now: datetime, note: str = "") -> Resource:
    """Cancel with a coded reason (R4 appointment-cancellation-reason); free the slot if still ahead."""
    if reason not in CANCEL_REASONS:
        raise InvalidInput(f"unknown cancellation reason {reason!r}", "reason")
    appointment = read(hub, f"Appointment/{appointment_id}")
    if appointment.get("status") not in ("proposed", "pending", "booked"):
        raise InvalidTransition(f"a visit that is {appointment.get('status')} cannot be cancelled")
    updated = _clean(appointment) | {"status": "cancelled", "cancelationReason": {
        "coding": [{"system": CANCEL_REASON_SYSTEM, "code": reason, "display": CANCEL_REASONS[reason]}],
        **({"text": note.strip()[:200]} if note.strip() else {})}}
    entries = []
    slot = _booked_slot(hub, appointment)
    if slot is not None and instant(slot["start"]) > now:
        provider_rules = rules_of(read(hub, slot["schedule"]["reference"]))
        window = _window(hub, slot)
        entries += _slot_puts(settle(window, _busy_ids(window, minus={slot["id"]}), provider_rules))
    entries.append({"resource": updated, "request": {"method": "PUT", "url": f"Appointment/{appointment_id}",
                                                     "ifMatch": etag(appointment)}})
    written = _transaction(hub, entries)
    return next(r for r in written if r.get("resourceType") == "Appointment")


def no_show(hub: FhirPort, appointment_id: str, *, now: datetime) -> Resource:
    """Mark a visit whose start has passed as ``noshow``; the slot stays busy (the time is gone)."""
    appointment = read(hub, f"Appointment/{appointment_id}")
    if appointment.get("status") not in ("booked", "arrived", "checked-in"):
        raise InvalidTransition(f"a visit that is {appointment.get('status')} cannot become a no-show")
    if instant(appointment["start"]) > now:
        raise InvalidTransition("a visit can be marked a no-show only after its start time")
    updated = _clean(appointment) | {"status": "noshow"}
    written = _transaction(hub, [{"resource": updated, "request": {
        "method": "PUT", "url": f"Appointment/{appointment_id}", "ifMatch": etag(appointment)}}])
    return written[0]
