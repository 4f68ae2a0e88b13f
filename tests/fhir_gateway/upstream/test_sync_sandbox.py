"""End to end: ``sync`` through each vendor profile against the sandbox's vendor-flavoured FHIR endpoints.

The sandbox (sandbox_fixtures/sandbox) serves the hub's demo data with each vendor's quirks (paging
style, outcome entries, required parameters, tenancy, empty creates); the adapter talks to it through
a WSGI transport, with a system token from the sandbox hub, and writes into a second, separate hub.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from werkzeug.test import Client

from fhir_gateway.app import build_services
from fhir_gateway.rest.context import Validator
from fhir_gateway.upstream.audit import MemoryAuditor
from fhir_gateway.upstream.connection import connection_from_dict
from fhir_gateway.upstream.factory import build_client
from fhir_gateway.upstream.sync import sync_patient
from tests.fhir_gateway.conftest import make_settings
from tests.fhir_gateway.upstream.conftest import FakeClock
from tests.sandbox_fixtures.conftest import ORIGIN, Sandbox, build, json_of


class WsgiAdapter(BaseAdapter):
    """A requests transport that calls a WSGI app in-process (no sockets)."""

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.client = Client(app)

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None, verify: Any = True,
             cert: Any = None, proxies: Any = None) -> requests.Response:
        url = str(request.url)
        path = url[len(ORIGIN):] if url.startswith(ORIGIN) else url
        body = request.body.encode() if isinstance(request.body, str) else request.body
        answer = self.client.open(path, method=str(request.method), headers=dict(request.headers), data=body,
                                  base_url=ORIGIN)
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers = CaseInsensitiveDict(dict(answer.headers))
        response._content = answer.get_data()
        response.url = url
        response.request = request
        return response

    def close(self) -> None:
        return None


@dataclasses.dataclass
class StaticTokens:
    """The system token the sandbox hub issued to the adapter (the flavours use the hub's own server)."""

    value: str

    def token(self) -> str | None:
        return self.value

    def invalidate(self) -> None:
        return None


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sb = build(tmp_path_factory.mktemp("sandbox-upstream"))
    yield sb
    sb.app.hub_app.extensions["telehub.fhir"].repository.engine.dispose()


@pytest.fixture
def target(tmp_path: Path) -> Any:
    built = build_services(make_settings(f"sqlite:///{tmp_path / 'target.sqlite3'}"), audit_key=os.urandom(32))
    yield dataclasses.replace(built, validator=Validator(r4b_models=False))
    built.repository.engine.dispose()


FLAVOURS = {"generic-r4": "generic", "epic": "epic", "cerner": "cerner", "athena": "athena"}


def _client(sandbox: Sandbox, vendor: str, clock: FakeClock, page_size: int = 7) -> Any:
    """Small pages (7) so that every paging style runs over several pages."""
    session = requests.Session()
    session.mount(ORIGIN, WsgiAdapter(sandbox.app))
    conn = connection_from_dict({"tenant": f"sandbox-{vendor}", "vendor": vendor, "practice": "195900",
                                 "base_url": ORIGIN + sandbox.base(FLAVOURS[vendor])}, _profiles())
    paging = conn.profile.paging.model_copy(update={"page_size": page_size})
    conn = dataclasses.replace(conn, profile=conn.profile.model_copy(update={"paging": paging}))
    client = build_client(conn, session=session, auditor=MemoryAuditor(), clock=clock, sleep=clock.sleep,
                          rng=lambda: 0.5)
    client.tokens = StaticTokens(sandbox.token)
    return client


def _profiles() -> Any:
    from vendor_profiles import ProfileRegistry

    return ProfileRegistry.load()


def _hub_count(sandbox: Sandbox, query: str) -> int:
    return len(json_of(sandbox.get(f"/fhir/{query}&_count=500")).get("entry", []))


@pytest.mark.parametrize("vendor", list(FLAVOURS))
def test_sync_through_each_flavour_is_complete_and_idempotent(sandbox: Sandbox, target: Any, vendor: str) -> None:
    clock = FakeClock()
    client = _client(sandbox, vendor, clock)
    patient = sandbox.patients["Hintz"]
    first = sync_patient(target, client, patient)
    assert not first.skipped, first.skipped
    assert first.fetched["Patient"] == 1 and first.created > 1 and first.provenance == 1
    encounters = _hub_count(sandbox, f"Encounter?patient={patient}")
    assert first.fetched.get("Encounter", 0) == encounters  # every page, nothing twice
    observations = _hub_count(sandbox, f"Observation?patient={patient}" + (
        "&category=laboratory,vital-signs,social-history" if vendor == "epic" else ""))  # Epic: per category
    assert observations > 14 and first.fetched.get("Observation", 0) == observations  # three pages or more
    second = sync_patient(target, client, patient)
    assert (second.created, second.updated, second.provenance) == (0, 0, 0)
    assert second.unchanged == first.created


def test_sync_rides_out_the_flavours_429s(tmp_path: Path, target: Any) -> None:
    (tmp_path / "rate").mkdir()
    sandbox = build(tmp_path / "rate", overrides={"cerner": {"rate_limit": {"every": 4, "retry_after": 2}}})
    try:
        clock = FakeClock()
        report = sync_patient(target, _client(sandbox, "cerner", clock), sandbox.patients["Hintz"])
        assert report.created > 1 and clock.sleeps and set(clock.sleeps) == {2.0}  # Retry-After honoured
    finally:
        sandbox.app.hub_app.extensions["telehub.fhir"].repository.engine.dispose()
