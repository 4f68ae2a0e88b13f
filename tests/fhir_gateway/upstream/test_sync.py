"""``telehub sync``: a patient's record from the recorded EHR answers into the hub's store, idempotently."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from fhir_gateway.app import build_services
from fhir_gateway.rest.context import FhirServices, Validator
from fhir_gateway.storage.tables import resource, resource_version
from fhir_gateway.upstream.audit import TrailAuditor
from fhir_gateway.upstream.errors import UpstreamBadResponse
from fhir_gateway.upstream.factory import build_client
from fhir_gateway.upstream.sync import sync_patient
from mappers.vendor.references import hub_id
from sandbox_fixtures.recordings import body, request
from tests.fhir_gateway.conftest import kek_file_for_tests, make_settings
from tests.fhir_gateway.upstream.conftest import (
    CERNER_BASE,
    EPIC_BASE,
    FakeClock,
    Replay,
    make_connection,
    recording_bytes,
    token_reply,
)

DERRICK = "eq081-VQEgP8drUUqCWzHfw3"
EPIC_RECORDED = ["allergyintolerance-eq081-VQEgP8drUUqCWzHfw3.json", "condition-problems.json",
                 "condition-encounter-diag-eq081-VQEgP8drUUqCWzHfw3.json", "condition-health-concern.json",
                 "documentreference-eq081-VQEgP8drUUqCWzHfw3.json", "encounter-eq081-VQEgP8drUUqCWzHfw3.json",
                 "medicationrequest.json", "observation-lab.json", "procedure.json"]
# Derrick's searches the sandbox sweep never captured: answered with an empty searchset (synthetic)
EPIC_UNRECORDED = [("DiagnosticReport", {"category": "LAB"}), ("Immunization", {}),
                   ("Observation", {"category": "vital-signs"}), ("Observation", {"category": "social-history"})]
EMPTY = {"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": []}


@pytest.fixture
def services(database_url: str) -> Any:
    """SQLite and PostgreSQL: the sync must be idempotent on both."""
    built = build_services(make_settings(database_url), audit_key=os.urandom(32))
    yield dataclasses.replace(built, validator=Validator(r4b_models=False))
    built.repository.engine.dispose()


def _counts(services: FhirServices) -> dict[str, int]:
    with services.repository.transaction() as conn:
        rows = conn.execute(select(resource.c.rtype, func.count()).group_by(resource.c.rtype)).all()
    return {r[0]: int(r[1]) for r in rows}


def _versions(services: FhirServices) -> int:
    with services.repository.transaction() as conn:
        return int(conn.execute(select(func.count()).select_from(resource_version)).scalar_one())


def _epic_replay(replay: Replay, *, broken: str | None = None, broken_body: bytes = b"") -> None:
    replay.on("GET", f"{EPIC_BASE}/.well-known/smart-configuration",
              json_body=body("epic", "smart-configuration_sandbox-r4.json"))
    replay.on("POST", "https://fhir.epic.com/interconnect-fhir-oauth/oauth2/token", json_body=token_reply("epic"))
    replay.on("GET", request("epic", "patient-eq081-VQEgP8drUUqCWzHfw3.json")["url"],
              json_body=body("epic", "patient-eq081-VQEgP8drUUqCWzHfw3.json"))
    for name in EPIC_RECORDED:
        if name == broken:
            replay.on("GET", request("epic", name)["url"], params={"_count": "100"}, raw=broken_body,
                      headers={"Content-Type": "application/fhir+json"})
        else:
            replay.on("GET", request("epic", name)["url"], params={"_count": "100"}, json_body=body("epic", name))
    for rtype, params in EPIC_UNRECORDED:
        replay.on("GET", f"{EPIC_BASE}/{rtype}", params={"patient": DERRICK, **params, "_count": "100"},
                  json_body=EMPTY)


def _epic_client(services: FhirServices, profiles: Any, secrets: dict[str, str], clock: FakeClock) -> Any:
    conn = make_connection("epic", profiles, secrets)
    auditor = TrailAuditor(services.audit, services.repository.engine)
    return build_client(conn, auditor=auditor, clock=clock, sleep=clock.sleep, rng=lambda: 0.5)


def test_epic_sync_stores_the_record_with_provenance_and_twice_changes_nothing(
        services: FhirServices, replay: Replay, profiles: Any, secrets: dict[str, str], clock: FakeClock) -> None:
    _epic_replay(replay)
    client = _epic_client(services, profiles, secrets, clock)
    first = sync_patient(services, client, DERRICK)
    assert not first.skipped, first.skipped
    hub_patient = hub_id(EPIC_BASE, "Patient", DERRICK)
    assert first.patient == hub_patient
    stored = _counts(services)
    assert stored.pop("Provenance") == 1
    assert stored["Patient"] == 1 and stored["Encounter"] == 1 and stored["DocumentReference"] == 20
    assert first.created == sum(stored.values()) and first.provenance == 1
    assert "Observation: warning/suppressed/59204" in first.warnings  # outcome entries surfaced, not stored
    assert "OperationOutcome" not in _counts(services)
    with services.repository.transaction() as conn:
        patient = services.repository.read(conn, "Patient", hub_patient)
        assert patient is not None and patient.resource is not None
        assert patient.resource["meta"]["source"] == f"{EPIC_BASE}/Patient/{DERRICK}"
        mrns = [i["value"] for i in patient.resource["identifier"] if i["system"] == "urn:telehub:mrn:clinic-epic"]
        assert mrns == ["203711"]
        enc = services.search.find(conn, "Encounter", [("subject", f"Patient/{hub_patient}")], limit=5)
        assert len(enc) == 1
        prov = services.search.find(conn, "Provenance", [("_id", first_provenance_id(services, conn))], limit=1)
        assert len(prov[0].resource["target"]) == first.created  # type: ignore[index]
    versions = _versions(services)
    second = sync_patient(services, client, DERRICK)
    assert (second.created, second.updated, second.provenance) == (0, 0, 0)
    assert second.unchanged == first.created
    assert _versions(services) == versions  # nothing written at all
    with services.repository.transaction() as conn:
        assert services.audit is not None and services.audit.verify(conn).ok
        events = list(services.audit.entries(conn, patient=hub_patient))
    upstream = [e for e in events if any(s.get("code") == "upstream-epic" for s in e["subtype"])]
    assert len(upstream) == 2 * first.calls  # every upstream call of both runs, with the patient
    syncs = [e for e in events if any(s.get("code") == "upstream-sync" for s in e["subtype"])]
    assert len(syncs) == 2
    assert DERRICK not in str(events)  # audit holds hub references, never the vendor's query


def first_provenance_id(services: FhirServices, conn: Any) -> str:
    return str(conn.execute(select(resource.c.fid).where(resource.c.rtype == "Provenance")).scalar_one())


def test_the_patient_is_matched_by_mrn(services: FhirServices, replay: Replay, profiles: Any,
                                       secrets: dict[str, str], clock: FakeClock) -> None:
    with services.repository.transaction(write=True) as conn:
        services.repository.upsert_many(conn, [{"resourceType": "Patient", "id": "hub-derrick", "identifier": [
            {"system": "urn:telehub:mrn:clinic-epic", "value": "203711"}]}])
    _epic_replay(replay)
    report = sync_patient(services, _epic_client(services, profiles, secrets, clock), DERRICK,
                          types={"Encounter"})
    assert report.patient == "hub-derrick" and report.updated == 1
    with services.repository.transaction() as conn:
        assert len(services.search.find(conn, "Encounter", [("subject", "Patient/hub-derrick")], limit=5)) == 1
    assert _counts(services)["Patient"] == 1


def test_malformed_json_mid_sync_stores_nothing(services: FhirServices, replay: Replay, profiles: Any,
                                                secrets: dict[str, str], clock: FakeClock) -> None:
    cut = recording_bytes("epic", "encounter-eq081-VQEgP8drUUqCWzHfw3.json")
    truncated = cut[cut.index(b'"body"') + 8:][:900]  # the real Encounter searchset, cut off mid-way
    _epic_replay(replay, broken="encounter-eq081-VQEgP8drUUqCWzHfw3.json", broken_body=truncated)
    with pytest.raises(UpstreamBadResponse, match="not valid JSON"):
        sync_patient(services, _epic_client(services, profiles, secrets, clock), DERRICK)
    assert _counts(services) == {}


def test_html_error_page_mid_sync_stores_nothing(services: FhirServices, replay: Replay, profiles: Any,
                                                 secrets: dict[str, str], clock: FakeClock) -> None:
    html = body("epic", "error-request-unsupported-resource-type.json")["_non_json_body"].encode("latin-1")
    _epic_replay(replay)
    replay.routes = {k: v for k, v in replay.routes.items() if "Procedure" not in k[1]}
    replay.on("GET", f"{EPIC_BASE}/Procedure", params={"patient": DERRICK, "_count": "100"}, status=404, raw=html,
              headers={"Content-Type": "text/html"})
    with pytest.raises(UpstreamBadResponse, match="HTML"):
        sync_patient(services, _epic_client(services, profiles, secrets, clock), DERRICK)
    assert _counts(services) == {}


def test_cerner_sync_with_since(services: FhirServices, replay: Replay, profiles: Any, secrets: dict[str, str],
                                clock: FakeClock) -> None:
    replay.on("POST", "https://authorization.cerner.com/tenants/ec2458f2-1e24-41c8-b71b-0e701af7583d/protocols/"
                      "oauth2/profiles/smart-v1/token", json_body=token_reply("cerner"))
    replay.on("GET", request("cerner", "patient-12744580.json")["url"],
              json_body=body("cerner", "patient-12744580.json"))
    # answered with the recorded problem-list search for this patient (the profile asks for every category)
    replay.on("GET", f"{CERNER_BASE}/Condition", params={"patient": "12744580", "_count": "50",
                                                         "_lastUpdated": "ge2020-01-01"},
              json_body=body("cerner", "condition-problems-12744580.json"))
    conn = make_connection("cerner", profiles, secrets)
    client = build_client(conn, clock=clock, sleep=clock.sleep)
    report = sync_patient(services, client, "12744580", since="2020-01-01", types={"Condition"})
    assert report.fetched == {"Patient": 1, "Condition": 1} and report.created == 2
    with services.repository.transaction() as db:
        patient = services.repository.read(db, "Patient", hub_id(CERNER_BASE, "Patient", "12744580"))
        assert patient is not None and patient.resource is not None
        system = f"urn:telehub:mrn:{conn.tenant}"
        mrns = [i["value"] for i in patient.resource["identifier"] if i.get("system") == system]
        assert mrns == ["8230"]


def test_cli_sync_command(sqlite_url: str, replay: Replay, tmp_path: Path, secrets: dict[str, str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    from fhir_gateway.upstream.sync_command import sync

    (tmp_path / "clinic-epic.toml").write_text(
        'vendor = "epic"\n'
        f'base_url = "{EPIC_BASE}"\n'
        'client_id = "epic-client-1"\n'
        f'private_key = "{secrets["private_key"]}"\n'
        'jku = "https://hub.example/.well-known/jwks.json"\n')
    _epic_replay(replay)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TELEHUB_ENV", "test")
    monkeypatch.setenv("TELEHUB_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("TELEHUB_KEK_FILE", kek_file_for_tests())
    monkeypatch.setenv("TELEHUB_CONNECTIONS_DIR", str(tmp_path))
    runner = CliRunner()
    result = runner.invoke(sync, ["--tenant", "clinic-epic", "--patient", DERRICK, "--types", "Encounter,Procedure"])
    assert result.exit_code == 0, result.output
    assert "2 created" in result.output and "1 Provenance" in result.output
    again = runner.invoke(sync, ["--tenant", "clinic-epic", "--patient", DERRICK, "--types", "Encounter,Procedure"])
    assert again.exit_code == 0 and "0 created, 0 updated, 2 unchanged" in again.output
    missing = runner.invoke(sync, ["--tenant", "nope", "--patient", DERRICK])
    assert missing.exit_code == 1 and "no connection file" in missing.output
    bad = runner.invoke(sync, ["--tenant", "clinic-epic", "--patient", DERRICK, "--since", "last week"])
    assert bad.exit_code == 2


def test_an_invalid_vendor_resource_is_skipped_and_reported_without_values(
        services: FhirServices, replay: Replay, profiles: Any, secrets: dict[str, str], clock: FakeClock) -> None:
    _epic_replay(replay)
    bad = body("epic", "encounter-eq081-VQEgP8drUUqCWzHfw3.json")
    bad["entry"][0]["resource"]["period"] = {"start": "SECRET-VALUE-not-a-date"}  # derived: one real Encounter broken
    replay.routes = {k: v for k, v in replay.routes.items() if not k[1].endswith("/Encounter")}
    replay.on("GET", f"{EPIC_BASE}/Encounter", params={"patient": DERRICK, "_count": "100"}, json_body=bad)
    report = sync_patient(services, _epic_client(services, profiles, secrets, clock), DERRICK, types={"Encounter"})
    assert report.created == 1 and len(report.skipped) == 1  # the Patient stored, the bad Encounter not
    assert report.skipped[0].startswith("Encounter: ") and "SECRET" not in report.summary()
    assert "Encounter" not in _counts(services)
