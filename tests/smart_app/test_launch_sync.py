"""A launch from a clinic EHR with a hub tenant syncs the patient first (``Patient/$ehr-sync``).

Its own live demo (the sync writes a second copy of the patient into the hub — the sandbox EHR *is*
the hub — which the shared live app's tests must not see). The hub's upstream client reaches the
sandbox's Epic flavour over the live server with a system token from the same hub.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from fhir_gateway.upstream.audit import MemoryAuditor
from fhir_gateway.upstream.connection import Connection
from fhir_gateway.upstream.factory import build_client
from fhir_gateway.upstream.tenants import TenantClients
from tests.fhir_gateway.upstream.test_sync_sandbox import StaticTokens
from tests.smart_app.conftest import Browser, LiveApp, serve, session_record

EPIC = "/sandbox/epic/api/FHIR/R4"


@dataclasses.dataclass
class Setup:
    live: LiveApp
    browser: Browser
    auditor: MemoryAuditor


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = Path(tmp_path_factory.mktemp("launch-sync"))
    for live in serve(tmp):
        connections = tmp / "connections"
        connections.mkdir()
        (connections / "clinic-epic.toml").write_text(f'vendor = "epic"\nbase_url = "{live.origin}{EPIC}"\n')
        (connections / "clinic-down.toml").write_text(
            f'vendor = "generic-r4"\nbase_url = "{live.origin}/sandbox/no-such-ehr/fhir"\n')
        token = live.auth.tokens.issue(client_id="telehub-app-backend", user=None, scope="system/*.rs",
                                       lifetime=3600)["access_token"]
        auditor = MemoryAuditor()
        live.mounted.hub_app.extensions["telehub.fhir"].upstream = TenantClients(connections, builder(auditor, token))
        yield Setup(live, Browser(live), auditor)


def builder(auditor: MemoryAuditor, token: str) -> Any:
    """Upstream clients over the live server's sockets, holding the hub's system token."""
    def make(conn: Connection) -> Any:
        client = build_client(conn, session=requests.Session(), auditor=auditor, sleep=lambda _s: None)
        client.tokens = StaticTokens(token)
        return client
    return make


def with_tenant(setup: Setup, monkeypatch: pytest.MonkeyPatch, tenant: str) -> None:
    svc = setup.live.services
    issuers = tuple(dataclasses.replace(t, tenant=tenant) if t.iss.endswith(EPIC) else t
                    for t in svc.settings.trusted_issuers)
    monkeypatch.setattr(svc, "settings", dataclasses.replace(svc.settings, trusted_issuers=issuers))


def test_failed_sync_warns_on_the_dashboard_and_the_launch_goes_on(setup: Setup,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with_tenant(setup, monkeypatch, "clinic-down")
    resp = setup.browser.launch(flavour="epic")
    assert resp.status_code == 200 and resp.url == f"{setup.live.origin}/app/"
    assert re.search(r'id="sync-warning">[^<]*out of date', resp.text)
    record = session_record(setup.browser)
    assert record["hub_patient"] == setup.live.patients["Conn"]  # matched as before, by identifier
    assert setup.auditor.calls and all(c.tenant == "clinic-down" for c in setup.auditor.calls)


def test_launch_syncs_the_patient_then_the_window_keeps_it_fresh(setup: Setup,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with_tenant(setup, monkeypatch, "clinic-epic")
    setup.auditor.calls.clear()
    resp = setup.browser.launch(flavour="epic")
    assert resp.status_code == 200 and 'id="sync-warning"' not in resp.text
    record = session_record(setup.browser)
    synced = record["hub_patient"]
    assert synced != setup.live.patients["Conn"]  # the hub's copy made by the sync (the sandbox EHR is the hub)
    copy = setup.live.fhir(f"Patient/{synced}")
    assert EPIC in copy["meta"]["source"]
    calls = len(setup.auditor.calls)
    assert calls > 2 and all(c.tenant == "clinic-epic" for c in setup.auditor.calls)
    again = setup.browser.launch(flavour="epic")  # within TELEHUB_APP_SYNC_MAX_AGE: fresh, no EHR call
    assert again.status_code == 200 and session_record(setup.browser)["hub_patient"] == synced
    assert len(setup.auditor.calls) == calls
