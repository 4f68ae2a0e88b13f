"""The dashboard core (pure): day bounds across DST, local times, patient names via _include, the queue."""
from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from smart_app.dashboard import build, day_bounds, zone

NY = zone("America/New_York")


def appt(aid: str, start: str, status: str = "booked", patient: str = "p1", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Appointment", "id": aid, "status": status, "start": start,
            "participant": [{"actor": {"reference": f"Patient/{patient}"}}, {"actor": {"reference": "Practitioner/d"}}],
            "reasonCode": [{"text": f"reason {aid}"}], **extra}


PATIENTS = [{"resourceType": "Patient", "id": "p1", "name": [{"given": ["Ada"], "family": "Lovelace"}]},
            {"resourceType": "Patient", "id": "p2", "name": [{"text": "Grace Hopper"}]}]


def test_day_bounds_follow_daylight_saving() -> None:
    assert day_bounds(date(2026, 3, 8), NY) == ("2026-03-08T00:00:00-05:00", "2026-03-09T00:00:00-04:00")  # 23 h
    assert day_bounds(date(2026, 11, 1), NY) == ("2026-11-01T00:00:00-04:00", "2026-11-02T00:00:00-05:00")  # 25 h
    assert day_bounds(date(2026, 6, 1), zone("Australia/Sydney"))[0] == "2026-06-01T00:00:00+10:00"


def test_visits_in_local_time_sorted_with_names_from_include() -> None:
    now = datetime(2026, 7, 1, 15, 0, tzinfo=UTC)
    data = build([appt("b", "2026-07-01T18:30:00Z", patient="p2"), appt("a", "2026-07-01T13:00:00Z")], PATIENTS,
                 tz=NY, now=now, day=date(2026, 7, 1))
    assert [(v.id, v.local_start, v.patient_name) for v in data.visits] == [
        ("a", "09:00", "Ada Lovelace"), ("b", "14:30", "Grace Hopper")]
    assert data.visits[0].reason == "reason a" and data.queue == []


def test_waiting_room_uses_encounter_arrival_else_last_update() -> None:
    now = datetime(2026, 7, 1, 15, 0, tzinfo=UTC)
    encounter = {"resourceType": "Encounter", "id": "e1", "status": "arrived", "appointment": [{"reference":
                 "Appointment/x"}], "period": {"start": "2026-07-01T14:48:00Z"}}
    data = build([appt("x", "2026-07-01T15:00:00Z", "arrived"),
                  appt("y", "2026-07-01T15:15:00Z", "arrived", "p2", meta={"lastUpdated": "2026-07-01T14:30:00Z"})],
                 [*PATIENTS, encounter], tz=NY, now=now, day=date(2026, 7, 1))
    assert [(w.visit.id, w.local_since, w.minutes) for w in data.queue] == [("y", "10:30", 30), ("x", "10:48", 12)]


def test_unknown_zone_falls_back() -> None:
    assert str(zone("Mars/Olympus", "Europe/Paris")) == "Europe/Paris"
    assert str(zone(None, "nope")) == "UTC"
