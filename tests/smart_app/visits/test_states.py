"""The pure state machine, exhaustively: every (state, event, role) triple against the table."""
from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest

from smart_app.visits.errors import ConsentRequired, InvalidTransition
from smart_app.visits.ports import Role
from smart_app.visits.states import (
    FHIR_STATUS,
    TABLE,
    TERMINAL,
    TRANSITIONS,
    TREATMENT_CONSENT,
    Event,
    State,
    fire,
    no_show_due,
    state_of,
)

ROLES: tuple[Role, ...] = get_args(Role)
ALL = frozenset({TREATMENT_CONSENT})


@pytest.mark.parametrize(("state", "event", "role"), list(itertools.product(State, Event, ROLES)))
def test_every_triple_is_allowed_exactly_when_the_table_says(state: State, event: Event, role: Role) -> None:
    t = TRANSITIONS.get((state, event))
    if t is not None and role in t.roles:
        assert fire(state, event, role, ALL).target == t.target
    else:
        with pytest.raises(InvalidTransition):
            fire(state, event, role, ALL)


def test_table_has_no_duplicates_and_terminal_states_are_dead_ends() -> None:
    assert len(TRANSITIONS) == len(TABLE)
    assert not [t for t in TABLE if t.source in TERMINAL]
    reachable = {State.BOOKED} | {t.target for t in TABLE}
    assert reachable == set(State)


def test_admit_needs_treatment_consent() -> None:
    with pytest.raises(ConsentRequired):
        fire(State.WAITING, Event.ADMIT, "provider")
    assert fire(State.WAITING, Event.ADMIT, "provider", ALL).target == State.IN_PROGRESS


def test_rejoin_resumes_the_same_visit_state() -> None:
    left = fire(State.IN_PROGRESS, Event.LEAVE, "system").target
    assert left == State.ON_LEAVE
    assert fire(left, Event.REJOIN, "patient").target == State.IN_PROGRESS


@pytest.mark.parametrize("state", list(State))
def test_fhir_statuses_round_trip(state: State) -> None:
    appt, enc = FHIR_STATUS[state]
    assert state_of(appt, enc) == state


def test_a_left_waiting_room_reads_back_as_booked() -> None:
    assert state_of("booked", "planned") == State.BOOKED


@pytest.mark.parametrize("status", ["arrived", "checked-in"])
def test_checked_in_elsewhere_reads_as_waiting(status: str) -> None:
    assert state_of(status, None) == State.WAITING


def test_unknown_status_pair_is_refused() -> None:
    with pytest.raises(InvalidTransition):
        state_of("proposed", None)


@pytest.mark.parametrize("state", list(State))
def test_no_show_only_for_booked_after_the_timeout(state: State) -> None:
    start = datetime(2026, 1, 1, 9, tzinfo=UTC)
    timeout = timedelta(minutes=10)
    assert not no_show_due(state, start, start + timedelta(minutes=9), timeout)
    assert no_show_due(state, start, start + timeout, timeout) is (state == State.BOOKED)
