"""Fixtures: the hub in-process (SQLite and PostgreSQL), a booked visit, a fixed clock, the buses.

The FHIR clients come from the scheduling tests (``FlaskHub`` over Flask's test client, ``RequestsHub``
over a live werkzeug server); both have the ``HubClient`` method set that ``visits.ports.FhirPort`` names.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smart_app.visits.events import InProcessBus
from smart_app.visits.ports import Actor
from smart_app.visits.service import VisitService, VisitSettings
from smart_app.visits.video.local import LocalWebRTCProvider
from tests.smart_app.scheduling import conftest as scheduling_fixtures
from tests.smart_app.scheduling.conftest import FlaskHub, RequestsHub

__all__ = ["Clock", "FlaskHub", "RequestsHub", "seed_visit"]
# the in-process hub fixtures, shared with the scheduling tests
hub_app = scheduling_fixtures.hub_app
hub = scheduling_fixtures.hub
live_postgres_hub = scheduling_fixtures.live_postgres_hub


@pytest.fixture
def live_hub(database_url: str) -> Iterator[str]:
    """The hub on SQLite and on PostgreSQL behind a threaded werkzeug server; yields its FHIR base URL."""
    yield from scheduling_fixtures.serve_hub(database_url)


START = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def seed_visit(hub: Any, start: datetime = START) -> dict[str, str]:
    patient = hub.create({"resourceType": "Patient", "name": [{"family": "Chalmers", "given": ["Peter"]}]})
    practitioner = hub.create({"resourceType": "Practitioner", "name": [{"family": "Rivera"}]})
    appt = hub.create({"resourceType": "Appointment", "status": "booked", "start": start.isoformat(),
                       "end": (start + timedelta(minutes=30)).isoformat(), "participant": [
                           {"actor": {"reference": f"Patient/{patient['id']}"}, "status": "accepted"},
                           {"actor": {"reference": f"Practitioner/{practitioner['id']}"}, "status": "accepted"}]})
    return {"patient": patient["id"], "practitioner": practitioner["id"], "visit": appt["id"]}


@pytest.fixture
def clock() -> Clock:
    return Clock(START - timedelta(minutes=5))


@pytest.fixture
def ids(hub: FlaskHub) -> dict[str, str]:
    return seed_visit(hub)


@pytest.fixture
def service(hub: FlaskHub, clock: Clock) -> VisitService:
    return VisitService(hub, InProcessBus(), LocalWebRTCProvider(), VisitSettings(clock=clock))


@pytest.fixture
def patient(ids: dict[str, str]) -> Actor:
    return Actor("patient", patient_id=ids["patient"])


@pytest.fixture
def provider(ids: dict[str, str]) -> Actor:
    return Actor("provider", practitioner_id=ids["practitioner"])
