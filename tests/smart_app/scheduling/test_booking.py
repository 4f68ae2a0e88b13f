"""Schedules, slots and bookings against the real hub (SQLite and PostgreSQL), through FHIR only."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from smart_app.scheduling.availability import Availability, VisitType, parse_hours
from smart_app.scheduling.booking import book, cancel, no_show, reschedule
from smart_app.scheduling.directory import next_available, providers_for
from smart_app.scheduling.errors import (
    BookingRefused,
    EditConflict,
    InvalidTransition,
    NotFound,
    NotLicensed,
    SlotUnavailable,
)
from smart_app.scheduling.feed_tokens import issue
from smart_app.scheduling.ports import update_versioned
from smart_app.scheduling.schedules import regenerate_all, save_availability, schedule_slots

from .conftest import NOW, FlaskHub, licence, patient, practitioner

VIDEO = VisitType("video-30", "Video visit", 30, "video")
PHONE60 = VisitType("phone-60", "Phone visit", 60, "phone")


def rules(hours: str = "mon 09:00-11:00\ntue 09:00-11:00", **kw: object) -> Availability:
    kw.setdefault("visit_types", (VIDEO,))
    kw.setdefault("horizon_days", 6)  # Mon 23 (after NOW) and Tue 24 only
    return Availability(timezone="America/New_York", hours=parse_hours(hours), **kw)  # type: ignore[arg-type]


def provider(hub: FlaskHub, states: tuple[str, ...] = ("NY",), r: Availability | None = None,
             family: str = "Rivera") -> tuple[str, str]:
    pr = hub.create(practitioner([licence(s) for s in states], family))
    schedule, _ = save_availability(hub, pr["id"], r or rules(), NOW)
    return pr["id"], schedule["id"]


def slots(hub: FlaskHub, schedule_id: str, status: str | None = None) -> list[dict[str, Any]]:
    return schedule_slots(hub, schedule_id, NOW - timedelta(days=1), status=status)


def test_availability_generates_slots_and_regenerates_without_touching_booked(hub: FlaskHub) -> None:
    pid, sid = provider(hub)
    generated = slots(hub, sid)
    assert len(generated) == 8  # Mon 23 09-11 New York (14-16Z, after NOW) + Tue 24
    assert {s["status"] for s in generated} == {"free"}
    assert generated[0]["start"] == "2026-11-23T14:00:00Z" and generated[0]["serviceType"][0]["coding"][0][
        "code"] == "video"
    schedule = hub.get(f"Schedule/{sid}")
    assert schedule["actor"] == [{"reference": f"Practitioner/{pid}"}] and schedule["planningHorizon"]
    pat = hub.create(patient("NY"))
    booked = book(hub, generated[1]["id"], pat["id"], now=NOW)
    # Saving the same rules again changes nothing; narrower hours drop free slots but keep the booked one.
    _, again = save_availability(hub, pid, rules(), NOW)
    assert (again.created, again.removed) == (0, 0)
    _, narrower = save_availability(hub, pid, rules("mon 09:00-09:30"), NOW)
    assert narrower.removed == 6 and narrower.booked == 1
    left = slots(hub, sid)
    assert [(s["id"], s["status"]) for s in left] == [(generated[0]["id"], "free"), (booked.slot["id"], "busy")]
    # Wider hours create slots again, not duplicating the kept ones.
    _, wider = save_availability(hub, pid, rules(), NOW)
    assert wider.created == 6 and len(slots(hub, sid)) == 8


def test_book_makes_slot_busy_and_appointment_booked(hub: FlaskHub) -> None:
    pid, sid = provider(hub)
    pat = hub.create(patient("NY"))
    slot = slots(hub, sid)[0]
    result = book(hub, slot["id"], pat["id"], now=NOW, booked_by="patient")
    appt = hub.get(f"Appointment/{result.appointment['id']}")
    assert appt["status"] == "booked" and appt["slot"] == [{"reference": f"Slot/{slot['id']}"}]
    assert appt["start"] == slot["start"] and appt["minutesDuration"] == 30
    assert {p["actor"]["reference"] for p in appt["participant"]} == {f"Patient/{pat['id']}",
                                                                      f"Practitioner/{pid}"}
    assert hub.get(f"Slot/{slot['id']}")["status"] == "busy"
    with pytest.raises(SlotUnavailable):
        book(hub, slot["id"], pat["id"], now=NOW)


def test_out_of_state_booking_is_refused_with_the_reason(hub: FlaskHub) -> None:
    _, sid = provider(hub, ("NY",))
    pat = hub.create(patient("CA"))
    slot = slots(hub, sid)[0]
    with pytest.raises(NotLicensed, match="not licensed to see patients located in CA"):
        book(hub, slot["id"], pat["id"], now=NOW)
    assert hub.get(f"Slot/{slot['id']}")["status"] == "free"
    assert hub.search("Appointment", {"slot": f"Slot/{slot['id']}"}) == []
    # The patient says they will be in New York for the visit: allowed, and the attestation is recorded.
    result = book(hub, slot["id"], pat["id"], now=NOW, attested_state="NY")
    assert {"url": "https://telehub.example/fhir/StructureDefinition/patient-attested-state",
            "valueCode": "NY"} in result.appointment["extension"]


def test_unknown_patient_state_and_past_slots_are_refused(hub: FlaskHub) -> None:
    _, sid = provider(hub)
    nowhere = hub.create(patient(None))
    first = slots(hub, sid)[0]
    with pytest.raises(BookingRefused, match="state is unknown"):
        book(hub, first["id"], nowhere["id"], now=NOW)
    with pytest.raises(BookingRefused, match="already started"):
        book(hub, first["id"], nowhere["id"], now=NOW + timedelta(days=3))
    with pytest.raises(NotFound):
        book(hub, "no-such-slot", nowhere["id"], now=NOW)


def test_overlapping_visit_types_block_each_other_and_cancel_frees_them(hub: FlaskHub) -> None:
    _, sid = provider(hub, r=rules("mon 09:00-10:00", visit_types=(VIDEO, PHONE60), buffer_after=0))
    pat = hub.create(patient("NY"))
    by_key = {(s["appointmentType"]["coding"][0]["code"], s["start"][11:16]): s for s in slots(hub, sid)}
    assert set(by_key) == {("video-30", "14:00"), ("video-30", "14:30"), ("phone-60", "14:00")}
    result = book(hub, by_key[("phone-60", "14:00")]["id"], pat["id"], now=NOW)
    states = {k: hub.get(f"Slot/{s['id']}")["status"] for k, s in by_key.items()}
    assert states == {("video-30", "14:00"): "busy-unavailable", ("video-30", "14:30"): "busy-unavailable",
                      ("phone-60", "14:00"): "busy"}
    with pytest.raises(SlotUnavailable):
        book(hub, by_key[("video-30", "14:30")]["id"], pat["id"], now=NOW)
    cancelled = cancel(hub, result.appointment["id"], "pat", now=NOW, note="feeling better")
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancelationReason"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason", "code": "pat",
        "display": "Patient"}
    assert {hub.get(f"Slot/{s['id']}")["status"] for s in by_key.values()} == {"free"}
    with pytest.raises(InvalidTransition):
        cancel(hub, result.appointment["id"], "pat", now=NOW)


def test_reschedule_moves_the_visit_and_frees_the_old_slot(hub: FlaskHub) -> None:
    _, sid = provider(hub)
    other_pid, other_sid = provider(hub, ("NY", "NJ"), family="Okafor")
    pat = hub.create(patient("NY"))
    first, second = slots(hub, sid)[:2]
    result = book(hub, first["id"], pat["id"], now=NOW)
    moved = reschedule(hub, result.appointment["id"], second["id"], now=NOW)
    assert moved.appointment["id"] == result.appointment["id"] and moved.appointment["start"] == second["start"]
    assert hub.get(f"Slot/{first['id']}")["status"] == "free"
    assert hub.get(f"Slot/{second['id']}")["status"] == "busy"
    # To another provider: the practitioner participant follows the slot.
    target = slots(hub, other_sid)[3]
    moved = reschedule(hub, result.appointment["id"], target["id"], now=NOW)
    assert f"Practitioner/{other_pid}" in {p["actor"]["reference"] for p in moved.appointment["participant"]}
    assert hub.get(f"Slot/{second['id']}")["status"] == "free"
    # Not to a provider unlicensed where the patient is.
    _, ca_sid = provider(hub, ("CA",), family="Nguyen")
    with pytest.raises(NotLicensed):
        reschedule(hub, result.appointment["id"], slots(hub, ca_sid)[0]["id"], now=NOW)
    assert hub.get(f"Appointment/{result.appointment['id']}")["start"] == target["start"]


def test_no_show_only_after_the_start(hub: FlaskHub) -> None:
    _, sid = provider(hub)
    pat = hub.create(patient("NY"))
    slot = slots(hub, sid)[0]
    result = book(hub, slot["id"], pat["id"], now=NOW)
    with pytest.raises(InvalidTransition, match="only after its start"):
        no_show(hub, result.appointment["id"], now=NOW)
    later = NOW + timedelta(hours=3)
    assert no_show(hub, result.appointment["id"], now=later)["status"] == "noshow"
    assert hub.get(f"Slot/{slot['id']}")["status"] == "busy"
    with pytest.raises(InvalidTransition):
        reschedule(hub, result.appointment["id"], slots(hub, sid)[2]["id"], now=NOW)


def test_provider_search_and_on_demand_offer_licensed_providers_only(hub: FlaskHub) -> None:
    # The CA provider has the earliest slot (Mon 09:00 Pacific is later in UTC, so give NY a later day).
    ny_pid, _ = provider(hub, ("NY",), rules("tue 09:00-10:00"), family="Adams")
    ca_pid, _ = provider(hub, ("CA",), rules("mon 09:00-10:00"), family="Baker")
    pat = hub.create(patient("NY"))
    licensed, refused = providers_for(hub, pat, NOW)
    assert [o.practitioner["id"] for o in licensed] == [ny_pid]
    assert [o.practitioner["id"] for o in refused] == [ca_pid] and "located in NY" in refused[0].decision.reason
    result = next_available(hub, pat["id"], now=NOW, within=timedelta(days=2))
    assert f"Practitioner/{ny_pid}" in {p["actor"]["reference"] for p in result.appointment["participant"]}
    assert result.appointment["start"] == "2026-11-24T14:00:00Z"
    tx = hub.create(patient("TX"))
    with pytest.raises(BookingRefused, match="No provider is licensed to see patients located in TX"):
        next_available(hub, tx["id"], now=NOW)
    with pytest.raises(BookingRefused, match="no licensed provider has a free phone slot".capitalize()[:10]):
        next_available(hub, pat["id"], now=NOW, modality="phone")


def test_new_slots_overlapping_a_booking_are_created_unavailable(hub: FlaskHub) -> None:
    pid, sid = provider(hub, r=rules("mon 09:00-10:00"))
    pat = hub.create(patient("NY"))
    first = slots(hub, sid)[0]
    book(hub, first["id"], pat["id"], now=NOW)
    # Adding a 60-minute type later: its 09:00 slot overlaps the booked 09:00-09:30 visit.
    _, report = save_availability(hub, pid, rules("mon 09:00-10:00", visit_types=(VIDEO, PHONE60)), NOW)
    assert report.created == 1
    (sixty,) = [s for s in slots(hub, sid) if s["appointmentType"]["coding"][0]["code"] == "phone-60"]
    assert sixty["status"] == "busy-unavailable"
    with pytest.raises(SlotUnavailable):
        book(hub, sixty["id"], pat["id"], now=NOW)


def test_regenerate_all_rolls_the_horizon_forward(hub: FlaskHub) -> None:
    _, sid = provider(hub)
    assert len(slots(hub, sid)) == 8
    reports = regenerate_all(hub, NOW + timedelta(days=7))
    assert reports[sid].created == 8 and reports[sid].removed == 0  # next Mon + Tue; the past is left alone


def test_concurrent_schedule_edits_do_not_overwrite_each_other(hub: FlaskHub) -> None:
    pid, sid = provider(hub)
    stale = hub.get(f"Schedule/{sid}")
    token = issue(hub, pid)  # changes the Schedule
    with pytest.raises(EditConflict):
        update_versioned(hub, stale, stale)
    assert token


def test_inactive_providers_are_neither_offered_nor_bookable(hub: FlaskHub) -> None:
    pid, sid = provider(hub)
    pat = hub.create(patient("NY"))
    body = hub.get(f"Practitioner/{pid}")
    hub.update({k: v for k, v in body.items() if k != "meta"} | {"active": False})
    assert providers_for(hub, pat, NOW) == ([], [])
    with pytest.raises(BookingRefused, match="not taking bookings"):
        book(hub, slots(hub, sid)[0]["id"], pat["id"], now=NOW)
