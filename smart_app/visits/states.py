"""The visit state machine, as data: pure, no I/O, tested exhaustively.

A visit is an Appointment plus its Encounter; each visit state maps to one status pair
(R4 `Appointment.status <https://hl7.org/fhir/R4/valueset-appointmentstatus.html>`_,
`Encounter.status <https://hl7.org/fhir/R4/valueset-encounter-status.html>`_)::

    booked ──arrive──▶ waiting ──admit──▶ in-progress ──finish──▶ finished
      │  ▲               │                  │   ▲
      │  └────leave──────┘              leave│   │rejoin (resume: same Encounter, same room)
      │                                      ▼   │
      ├──no-show (timeout)──▶ no-show       on-leave ──finish──▶ finished
      └──cancel──▶ cancelled

``running-late`` is a notice from the provider: a self-loop in booked/waiting that changes no status.
Transitions name the roles allowed to fire them and the facts they require (``treatment-consent``
before admit). The FHIR write is guarded with If-Match by :mod:`.machine`, so of two concurrent
transitions from the same version only one wins.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from smart_app.visits.errors import ConsentRequired, InvalidTransition
from smart_app.visits.ports import Role


class State(StrEnum):
    BOOKED = "booked"
    WAITING = "waiting"
    IN_PROGRESS = "in-progress"
    ON_LEAVE = "on-leave"
    FINISHED = "finished"
    NO_SHOW = "no-show"
    CANCELLED = "cancelled"


class Event(StrEnum):
    ARRIVE = "arrive"          # patient enters the waiting room
    LEAVE = "leave"            # patient left, or their connection dropped
    ADMIT = "admit"            # provider admits the patient: the visit starts
    REJOIN = "rejoin"          # patient back after a drop: the visit resumes
    FINISH = "finish"          # provider ends the visit
    NO_SHOW = "no-show"        # the no-show timeout passed without arrival
    CANCEL = "cancel"
    RUNNING_LATE = "running-late"


TERMINAL = frozenset({State.FINISHED, State.NO_SHOW, State.CANCELLED})
TREATMENT_CONSENT = "treatment-consent"


@dataclass(frozen=True)
class Transition:
    source: State
    event: Event
    target: State
    roles: frozenset[Role]
    requires: frozenset[str] = field(default_factory=frozenset)


def _t(source: State, event: Event, target: State, *roles: Role, requires: tuple[str, ...] = ()) -> Transition:
    return Transition(source, event, target, frozenset(roles), frozenset(requires))


S, E = State, Event
TABLE: tuple[Transition, ...] = (
    _t(S.BOOKED, E.ARRIVE, S.WAITING, "patient"),
    _t(S.BOOKED, E.NO_SHOW, S.NO_SHOW, "system", "provider"),
    _t(S.BOOKED, E.CANCEL, S.CANCELLED, "provider", "patient"),
    _t(S.BOOKED, E.RUNNING_LATE, S.BOOKED, "provider"),
    _t(S.WAITING, E.ARRIVE, S.WAITING, "patient"),  # a reloaded waiting-room page
    _t(S.WAITING, E.LEAVE, S.BOOKED, "patient", "system"),
    _t(S.WAITING, E.ADMIT, S.IN_PROGRESS, "provider", requires=(TREATMENT_CONSENT,)),
    _t(S.WAITING, E.RUNNING_LATE, S.WAITING, "provider"),
    _t(S.WAITING, E.CANCEL, S.CANCELLED, "provider"),
    _t(S.IN_PROGRESS, E.LEAVE, S.ON_LEAVE, "patient", "system"),
    _t(S.IN_PROGRESS, E.REJOIN, S.IN_PROGRESS, "patient"),  # reopened before the drop was noticed
    _t(S.IN_PROGRESS, E.FINISH, S.FINISHED, "provider"),
    _t(S.ON_LEAVE, E.REJOIN, S.IN_PROGRESS, "patient"),
    _t(S.ON_LEAVE, E.FINISH, S.FINISHED, "provider"),
)
TRANSITIONS: Mapping[tuple[State, Event], Transition] = {(t.source, t.event): t for t in TABLE}

# visit state -> (Appointment.status, Encounter.status); Encounter None = not created yet
FHIR_STATUS: Mapping[State, tuple[str, str | None]] = {
    S.BOOKED: ("booked", None),
    S.WAITING: ("arrived", "arrived"),
    S.IN_PROGRESS: ("arrived", "in-progress"),
    S.ON_LEAVE: ("arrived", "onleave"),
    S.FINISHED: ("fulfilled", "finished"),
    S.NO_SHOW: ("noshow", "cancelled"),
    S.CANCELLED: ("cancelled", "cancelled"),
}


def state_of(appointment_status: str, encounter_status: str | None) -> State:
    """Read the visit state back from FHIR statuses (an Encounter left 'planned' by a leave counts as booked)."""
    if appointment_status == "booked":
        return S.BOOKED
    if appointment_status in ("arrived", "checked-in") and encounter_status in (None, "planned"):
        return S.WAITING  # checked in elsewhere (e.g. at the front desk) before any Encounter existed
    for state, (appt, enc) in FHIR_STATUS.items():
        if appt == appointment_status and (enc == encounter_status or enc is None):
            return state
    if appointment_status in ("noshow", "cancelled", "fulfilled"):
        return {"noshow": S.NO_SHOW, "cancelled": S.CANCELLED, "fulfilled": S.FINISHED}[appointment_status]
    raise InvalidTransition(f"unknown visit status pair {appointment_status}/{encounter_status}")


def fire(state: State, event: Event, role: Role, facts: frozenset[str] = frozenset()) -> Transition:
    """The transition ``event`` takes from ``state`` for ``role``; raise if not allowed or a fact is missing."""
    transition = TRANSITIONS.get((state, event))
    if transition is None:
        raise InvalidTransition(f"'{event}' is not possible when the visit is {state}")
    if role not in transition.roles:
        raise InvalidTransition(f"a {role} cannot '{event}' this visit")
    missing = transition.requires - facts
    if TREATMENT_CONSENT in missing:
        raise ConsentRequired("the patient has not consented to telehealth treatment yet")
    if missing:
        raise InvalidTransition(f"'{event}' needs {', '.join(sorted(missing))}")
    return transition


def no_show_due(state: State, start: datetime, now: datetime, timeout: timedelta) -> bool:
    """True when a booked visit's patient has not arrived ``timeout`` after the start (configurable)."""
    return state == S.BOOKED and now >= start + timeout
