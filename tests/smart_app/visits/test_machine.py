"""The FHIR writes of the state machine against the in-process hub, on SQLite and PostgreSQL."""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from smart_app.visits import machine
from smart_app.visits.errors import ConsentRequired, InvalidTransition, VisitConflict
from smart_app.visits.events import channel_for
from smart_app.visits.ports import Actor
from smart_app.visits.service import VisitService
from smart_app.visits.states import Event, State
from tests.smart_app.visits.conftest import Clock, RequestsHub, seed_visit


def test_full_visit_with_drop_and_resume(service: VisitService, hub: Any, ids: dict[str, str], patient: Actor,
                                         provider: Actor, clock: Clock) -> None:
    sub = service.bus.subscribe(channel_for(ids["visit"]), timeout=0.1)
    v = service.fire(ids["visit"], Event.ARRIVE, patient)
    assert (v.state, v.appointment["status"], v.encounter and v.encounter["status"]) == (
        State.WAITING, "arrived", "arrived")
    with pytest.raises(ConsentRequired):
        service.fire(ids["visit"], Event.ADMIT, provider)
    service.give_treatment_consent(ids["visit"], patient)
    clock.advance(minutes=6)
    v = service.fire(ids["visit"], Event.ADMIT, provider)
    assert v.state == State.IN_PROGRESS
    started = v.encounter["period"]["start"] if v.encounter else None
    room = service.room(v)
    assert room is not None
    clock.advance(minutes=3)
    v = service.fire(ids["visit"], Event.LEAVE, Actor("system"))
    assert v.encounter and v.encounter["status"] == "onleave"
    clock.advance(minutes=1)
    v = service.fire(ids["visit"], Event.REJOIN, patient)
    assert v.state == State.IN_PROGRESS
    assert v.encounter and v.encounter["period"]["start"] == started  # resumed, not restarted
    assert service.room(v) == room  # the same room
    clock.advance(minutes=10)
    v = service.fire(ids["visit"], Event.FINISH, provider)
    enc = v.encounter or {}
    assert (v.appointment["status"], enc["status"]) == ("fulfilled", "finished")
    assert enc["period"] == {"start": started, "end": clock.now.isoformat(timespec="seconds")}
    assert [p["individual"]["reference"] for p in enc["participant"]] == [f"Practitioner/{ids['practitioner']}"]
    assert [h["status"] for h in enc["statusHistory"]] == ["arrived", "in-progress", "onleave", "in-progress",
                                                           "finished"]
    assert enc["subject"]["reference"] == f"Patient/{ids['patient']}"
    events = []
    while (e := next(sub)) is not None:
        events.append(e)
    states = [e["state"] for e in events if e["type"] == "state" and "event" in e]
    assert states == ["waiting", "in-progress", "on-leave", "in-progress", "finished"]


def test_patient_leaving_the_waiting_room_and_coming_back(service: VisitService, ids: dict[str, str],
                                                          patient: Actor) -> None:
    service.fire(ids["visit"], Event.ARRIVE, patient)
    v = service.fire(ids["visit"], Event.LEAVE, patient)
    assert (v.state, v.appointment["status"], v.encounter and v.encounter["status"]) == (
        State.BOOKED, "booked", "planned")
    v = service.fire(ids["visit"], Event.ARRIVE, patient)
    assert v.state == State.WAITING
    assert len(service.hub.search("Encounter", {"appointment": f"Appointment/{ids['visit']}"})) == 1


def test_running_late_notice_is_stored_and_keeps_the_state(service: VisitService, ids: dict[str, str],
                                                           provider: Actor) -> None:
    v = service.fire(ids["visit"], Event.RUNNING_LATE, provider, minutes_late=10)
    assert (v.state, v.running_late) == (State.BOOKED, 10)


def test_no_show_after_the_configured_timeout(service: VisitService, ids: dict[str, str], clock: Clock) -> None:
    clock.advance(minutes=19)  # 14 min after the start: not yet
    assert service.sweep_no_shows([ids["visit"]]) == []
    assert service.sweep_no_shows() == []
    clock.advance(minutes=1)
    assert service.overdue() == [ids["visit"]]
    assert service.sweep_no_shows() == [ids["visit"]]
    v = service.load(ids["visit"])
    assert (v.state, v.appointment["status"], v.encounter) == (State.NO_SHOW, "noshow", None)


def test_a_patient_cannot_admit_themselves(service: VisitService, ids: dict[str, str], patient: Actor) -> None:
    service.fire(ids["visit"], Event.ARRIVE, patient)
    with pytest.raises(InvalidTransition):
        service.fire(ids["visit"], Event.ADMIT, patient)


def test_stale_version_loses(service: VisitService, hub: Any, ids: dict[str, str], patient: Actor,
                             provider: Actor) -> None:
    stale = machine.load(hub, ids["visit"])
    machine.transition(hub, stale, Event.ARRIVE, patient, now=service.now())
    with pytest.raises(VisitConflict):
        machine.transition(hub, stale, Event.CANCEL, provider, now=service.now())
    assert machine.load(hub, ids["visit"]).state == State.WAITING


@pytest.mark.parametrize("attempt", range(3))
def test_concurrent_transitions_one_wins(live_hub: str, clock: Clock, attempt: int) -> None:
    """Two threads fire from the same version over real HTTP: exactly one commits (SQLite and PostgreSQL)."""
    hub = RequestsHub(live_hub)
    ids = seed_visit(hub)
    visit = machine.load(hub, ids["visit"])
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def run(event: Event, actor: Actor) -> None:
        barrier.wait()
        try:
            machine.transition(RequestsHub(live_hub), visit, event, actor, now=clock.now)
            outcomes.append(f"won:{event}")
        except VisitConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=run, args=(Event.ARRIVE, Actor("patient", patient_id=ids["patient"]))),
               threading.Thread(target=run, args=(Event.CANCEL, Actor("provider")))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(o.split(":")[0] for o in outcomes) == ["conflict", "won"]
    final = machine.load(hub, ids["visit"])
    winner = next(o for o in outcomes if o.startswith("won")).split(":")[1]
    assert final.state == (State.WAITING if winner == "arrive" else State.CANCELLED)
    assert len(hub.search("Encounter", {"appointment": f"Appointment/{ids['visit']}"})) == (
        1 if winner == "arrive" else 0)


def test_a_duplicate_that_lost_the_race_collapses_into_the_winner(service: VisitService, hub: Any,
                                                                  ids: dict[str, str], patient: Actor,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    stale = machine.load(hub, ids["visit"])
    machine.transition(hub, stale, Event.ARRIVE, patient, now=service.now())  # the other tab won
    def stale_once() -> Callable[[str], machine.Visit]:
        first = [stale]
        return lambda vid: first.pop() if first else machine.load(hub, vid)

    monkeypatch.setattr(service, "load", stale_once())
    assert service.fire(ids["visit"], Event.ARRIVE, patient).state == State.WAITING  # no error for a duplicate
    monkeypatch.setattr(service, "load", stale_once())
    with pytest.raises(VisitConflict):  # a real conflict is reported
        service.fire(ids["visit"], Event.CANCEL, Actor("provider"))
