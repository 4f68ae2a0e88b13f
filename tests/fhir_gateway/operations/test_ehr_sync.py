"""``POST Patient/$ehr-sync`` on a hub, pulling from the sandbox's Epic flavour in-process.

The sandbox (a hub with demo data, served with Epic's quirks) is the EHR; a second hub is the one
under test. Its upstream clients talk to the sandbox through a WSGI transport with the sandbox's
system token; every upstream call lands on one MemoryAuditor, which is how "no upstream calls" is seen.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from flask import Flask
from sqlalchemy import select

from fhir_gateway.app import create_app
from fhir_gateway.audit.tables import audit_log
from fhir_gateway.upstream.audit import MemoryAuditor
from fhir_gateway.upstream.connection import Connection
from fhir_gateway.upstream.factory import build_client
from fhir_gateway.upstream.tenants import TenantClients
from tests.fhir_gateway.conftest import make_settings
from tests.fhir_gateway.upstream.test_sync_sandbox import StaticTokens, WsgiAdapter
from tests.sandbox_fixtures.conftest import ORIGIN, Sandbox, build

CLIENT = "ehr-sync-test"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sb = build(tmp_path_factory.mktemp("ehr-sync-sandbox"))
    yield sb
    sb.app.hub_app.extensions["telehub.fhir"].repository.engine.dispose()


class Hub:
    def __init__(self, app: Flask, auditor: MemoryAuditor) -> None:
        self.app, self.auditor = app, auditor
        auth = app.extensions["telehub.auth"].services
        auth.clients.add(CLIENT, client_type="public", redirect_uris=["http://127.0.0.1/unused"],
                         scope="system/*.cruds patient/*.cruds", name="ehr-sync test")
        self.auth = auth

    def token(self, scope: str = "system/Patient.cruds", **context: str) -> str:
        return str(self.auth.tokens.issue(client_id=CLIENT, user=None, scope=scope, context=context,
                                          lifetime=300)["access_token"])

    def sync(self, tenant: str, patient: str, max_age: int | None = None, *, token: str | None = None) -> Any:
        params: list[dict[str, Any]] = [{"name": "tenant", "valueString": tenant},
                                        {"name": "patient", "valueString": patient}]
        if max_age is not None:
            params.append({"name": "maxAge", "valueInteger": max_age})
        return self.app.test_client().post(
            "/fhir/Patient/$ehr-sync", data=orjson.dumps({"resourceType": "Parameters", "parameter": params}),
            headers={"Authorization": f"Bearer {token or self.token()}", "Content-Type": "application/fhir+json"})

    def get(self, path: str) -> Any:
        token = self.token("system/*.rs")
        resp = self.app.test_client().get(f"/fhir/{path}", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200, resp.get_data(as_text=True)
        return resp.get_json()


@pytest.fixture
def hub(tmp_path: Path, sandbox: Sandbox) -> Iterator[Hub]:
    connections = tmp_path / "connections"
    connections.mkdir()
    (connections / "clinic-epic.toml").write_text(
        f'vendor = "epic"\nbase_url = "{ORIGIN}{sandbox.base("epic")}"\nclient_id = "unused"\n')
    (connections / "clinic-down.toml").write_text(
        f'vendor = "generic-r4"\nbase_url = "{ORIGIN}/sandbox/no-such-ehr/fhir"\nclient_id = "unused"\n')
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'hub.sqlite3'}", auth="smart"), audit_key=os.urandom(32))
    auditor = MemoryAuditor()

    def make(conn: Connection) -> Any:
        session = requests.Session()
        session.mount(ORIGIN, WsgiAdapter(sandbox.app))
        client = build_client(conn, session=session, auditor=auditor, sleep=lambda _s: None)
        client.tokens = StaticTokens(sandbox.token)
        return client

    app.extensions["telehub.fhir"].upstream = TenantClients(connections, make)
    yield Hub(app, auditor)
    app.extensions["telehub.fhir"].repository.engine.dispose()


def params_of(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in body["parameter"]:
        if p["name"] == "count":
            parts = {q["name"]: next(v for k, v in q.items() if k.startswith("value")) for q in p["part"]}
            out.setdefault("count", {})[parts["type"]] = parts["fetched"]
        elif p["name"] == "warning":
            out.setdefault("warning", []).append(p["valueString"])
        else:
            out[p["name"]] = next(v for k, v in p.items() if k.startswith("value"))
    return out


def test_sync_then_fresh_then_forced_resync_changes_nothing(hub: Hub, sandbox: Sandbox) -> None:
    patient = sandbox.patients["Hintz"]
    first = hub.sync("clinic-epic", patient, 900)
    assert first.status_code == 200, first.get_data(as_text=True)
    got = params_of(first.get_json())
    assert got["result"] == "synced" and got["created"] > 1 and got["count"]["Patient"] == 1
    assert got["count"].get("Encounter", 0) > 0 and got["count"].get("Observation", 0) > 0
    hub_patient = got["patient"]["reference"]
    assert hub_patient.startswith("Patient/") and hub.get(hub_patient)["resourceType"] == "Patient"
    calls = len(hub.auditor.calls)
    assert calls > 2

    fresh = params_of(hub.sync("clinic-epic", patient, 900).get_json())
    assert fresh["result"] == "fresh" and fresh["patient"]["reference"] == hub_patient
    assert fresh["count"] == got["count"] and fresh["lastSynced"] == got["lastSynced"]
    assert len(hub.auditor.calls) == calls  # no upstream call at all

    provenance = hub.get("Provenance?_summary=count")["total"]
    version = hub.get(hub_patient)["meta"]["versionId"]
    again = params_of(hub.sync("clinic-epic", patient, 0).get_json())
    assert again["result"] == "synced" and len(hub.auditor.calls) > calls
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, got["created"])
    assert again["patient"]["reference"] == hub_patient and again["lastSynced"] > got["lastSynced"]
    assert hub.get("Provenance?_summary=count")["total"] == provenance
    assert hub.get(hub_patient)["meta"]["versionId"] == version

    # the normal pipeline audited each call of the operation, with the hub patient
    with hub.app.extensions["telehub.fhir"].repository.engine.connect() as db:
        rows = db.execute(select(audit_log.c.subtype, audit_log.c.patients, audit_log.c.agent)).all()
    ops = [r for r in rows if (r.subtype, r.agent) == ("operation", CLIENT)]
    hub_id = hub_patient.split("/")[1]
    assert len(ops) == 3 and all(hub_id in r.patients.split() for r in ops)
    assert sum(r.agent == "telehub-upstream:clinic-epic" for r in rows) == 2  # one per real sync
    # the window restarts from the forced sync
    assert params_of(hub.sync("clinic-epic", patient, 900).get_json())["lastSynced"] == again["lastSynced"]


def test_patient_and_user_tokens_and_read_only_clients_are_refused(hub: Hub, sandbox: Sandbox) -> None:
    patient = sandbox.patients["Hintz"]
    as_patient = hub.sync("clinic-epic", patient, token=hub.token("patient/*.cruds", patient="someone"))
    assert as_patient.status_code == 403 and as_patient.get_json()["resourceType"] == "OperationOutcome"
    read_only = hub.sync("clinic-epic", patient, token=hub.token("system/*.rs"))
    assert read_only.status_code == 403
    assert hub.app.test_client().post("/fhir/Patient/$ehr-sync").status_code == 401
    assert hub.auditor.calls == []  # refused before any upstream call


def test_unknown_tenant_bad_input_and_upstream_failure(hub: Hub, sandbox: Sandbox) -> None:
    patient = sandbox.patients["Hintz"]
    for tenant in ("no-such-clinic", "../clinic-epic"):
        unknown = hub.sync(tenant, patient)
        assert unknown.status_code == 422
        assert unknown.get_json()["issue"][0]["code"] == "not-found"
    assert hub.sync("clinic-epic", "bad/id").status_code == 400
    assert hub.app.test_client().get("/fhir/Patient/$ehr-sync?tenant=clinic-epic&patient=x", headers={
        "Authorization": f"Bearer {hub.token()}"}).status_code == 400  # changes state: POST only
    down = hub.sync("clinic-down", patient)
    assert down.status_code == 502
    outcome = down.get_json()
    assert outcome["resourceType"] == "OperationOutcome" and patient not in down.get_data(as_text=True)
    assert hub.get("Patient?_summary=count")["total"] == 0  # nothing stored
