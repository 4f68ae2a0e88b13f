"""No double booking: parallel bookers against a live hub on PostgreSQL, over HTTP.

Each thread has its own HTTP session and runs the whole booking (read slot, licence check, one
transaction with If-Match on the slot version + the Appointment create). Exactly one wins.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from smart_app.scheduling.availability import Availability, VisitType, parse_hours
from smart_app.scheduling.booking import Booked, book
from smart_app.scheduling.errors import SlotUnavailable
from smart_app.scheduling.schedules import save_availability, schedule_slots

from .conftest import NOW, RequestsHub, licence, patient, practitioner

BOOKERS = 8


def _setup(base: str, visit_types: tuple[VisitType, ...]) -> tuple[RequestsHub, list[dict[str, Any]], list[str]]:
    hub = RequestsHub(base)
    pr = hub.create(practitioner([licence("NY")]))
    rules = Availability(timezone="America/New_York", hours=parse_hours("mon 09:00-10:00"),
                         visit_types=visit_types, horizon_days=1)
    schedule, _ = save_availability(hub, pr["id"], rules, NOW)
    patients = [hub.create(patient("NY"))["id"] for _ in range(BOOKERS)]
    return hub, schedule_slots(hub, schedule["id"], NOW), patients


def _race(base: str, jobs: list[tuple[str, str]]) -> tuple[list[Booked], list[Exception]]:
    barrier = threading.Barrier(len(jobs))

    def attempt(job: tuple[str, str]) -> Booked | Exception:
        client = RequestsHub(base)
        barrier.wait()
        try:
            return book(client, job[0], job[1], now=NOW, booked_by="patient")
        except SlotUnavailable as exc:
            return exc

    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(attempt, jobs))
    unexpected = [r for r in results if isinstance(r, Exception) and not isinstance(r, SlotUnavailable)]
    assert not unexpected, unexpected
    return [r for r in results if isinstance(r, Booked)], [r for r in results if isinstance(r, Exception)]


def test_parallel_bookers_of_one_slot_exactly_one_wins(live_postgres_hub: str) -> None:
    hub, slots, patients = _setup(live_postgres_hub, (VisitType("video-30", "Video visit", 30, "video"),))
    target = slots[0]["id"]
    won, lost = _race(live_postgres_hub, [(target, p) for p in patients])
    assert len(won) == 1 and len(lost) == BOOKERS - 1
    # The losers read the slot as free too and were stopped by If-Match at commit (not by an earlier read).
    assert any("just taken" in str(e) for e in lost)
    appointments = hub.search("Appointment", {"slot": f"Slot/{target}"})
    assert [a["id"] for a in appointments] == [won[0].appointment["id"]]
    assert hub.get(f"Slot/{target}")["status"] == "busy"


def test_parallel_bookers_of_overlapping_slots_exactly_one_wins(live_postgres_hub: str) -> None:
    types = (VisitType("video-30", "Video visit", 30, "video"), VisitType("phone-60", "Phone visit", 60, "phone"))
    hub, slots, patients = _setup(live_postgres_hub, types)
    assert len(slots) == 3  # 09:00 and 09:30 (30 min) overlap 09:00 (60 min)
    jobs = [(slots[i % 3]["id"], p) for i, p in enumerate(patients)]
    won, _ = _race(live_postgres_hub, jobs)
    booked = [s for s in schedule_slots(hub, slots[0]["schedule"]["reference"].split("/")[1], NOW)
              if s["status"] == "busy"]
    # Either the 60-minute slot, or one or both 30-minute ones (they do not overlap each other).
    assert len(won) == len(booked) and len(won) in (1, 2)
    if len(won) == 2:
        assert {s["appointmentType"]["coding"][0]["code"] for s in booked} == {"video-30"}
    appointments = [a for s in slots for a in hub.search("Appointment", {"slot": f"Slot/{s['id']}"})]
    assert len(appointments) == len(won)


def test_parallel_bookers_of_neighbouring_slots_both_win(live_postgres_hub: str) -> None:
    # 09:00 and 09:30 (30 min) do not overlap each other, but both mark the 09:00 60-minute slot unavailable:
    # the If-Match loser retries because its own slot is still free, so neither booking is lost.
    types = (VisitType("video-30", "Video visit", 30, "video"), VisitType("phone-60", "Phone visit", 60, "phone"))
    hub, slots, patients = _setup(live_postgres_hub, types)
    thirty = [s["id"] for s in slots if s["appointmentType"]["coding"][0]["code"] == "video-30"]
    won, lost = _race(live_postgres_hub, [(thirty[0], patients[0]), (thirty[1], patients[1])])
    assert len(won) == 2 and not lost
    statuses = {s["appointmentType"]["coding"][0]["code"] + s["start"][11:16]: hub.get(f"Slot/{s['id']}")["status"]
                for s in slots}
    assert statuses == {"video-3014:00": "busy", "video-3014:30": "busy", "phone-6014:00": "busy-unavailable"}
