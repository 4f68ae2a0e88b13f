"""Per-flavour quirks: required parameters, error shapes, HTML 404, Accept, tenant, practice, 429."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sandbox_fixtures.conftest import Sandbox, build, json_of

PRACTICE = "Organization/a-1.Practice-195900"


# ------------------------------------------------------------------ required search parameters

def test_epic_observation_needs_category_or_code(sandbox: Sandbox) -> None:
    patient = sandbox.patients["Hintz"]
    resp = sandbox.get(f"{sandbox.base('epic')}/Observation?patient={patient}")
    assert resp.status_code == 400
    issue = json_of(resp)["issue"][0]
    assert issue["severity"] == "fatal"
    assert issue["details"]["coding"][0]["code"] == "59108"  # vendor-notes §2.3
    assert issue["details"]["coding"][0]["system"] == "urn:oid:1.2.840.114350.1.13.0.1.7.2.657369"
    ok = sandbox.get(f"{sandbox.base('epic')}/Observation?patient={patient}&code=http://loinc.org|8302-2")
    assert ok.status_code == 200


def test_epic_patient_needs_demographics(sandbox: Sandbox) -> None:
    resp = sandbox.get(f"{sandbox.base('epic')}/Patient")
    assert resp.status_code == 400 and json_of(resp)["issue"][0]["details"]["coding"][0]["code"] == "59159"


def test_cerner_observation_needs_patient(sandbox: Sandbox) -> None:
    resp = sandbox.get(f"{sandbox.base('cerner')}/Observation?category=laboratory")
    assert resp.status_code == 400
    assert json_of(resp)["issue"] == [{"severity": "error", "code": "invalid",
                                       "details": {"text": "No supported search parameters provided"}}]


def test_athena_encounter_needs_patient(sandbox: Sandbox) -> None:
    resp = sandbox.get(f"{sandbox.base('athena')}/Encounter?ah-practice={PRACTICE}")
    assert resp.status_code == 400
    issue = json_of(resp)["issue"][0]
    assert (issue["severity"], issue["code"]) == ("fatal", "forbidden")
    assert "[[patient],[_id]]" in issue["diagnostics"]


def test_generic_has_no_required_parameters(sandbox: Sandbox) -> None:
    resp = sandbox.get(f"{sandbox.base('generic')}/Observation?_count=2")
    assert resp.status_code == 200 and len(json_of(resp)["entry"]) == 2


# ------------------------------------------------------------------ tenancy and practice

def test_cerner_tenant_in_path(sandbox: Sandbox) -> None:
    good = sandbox.get(f"{sandbox.base('cerner')}/Patient/{sandbox.patients['Conn']}")
    assert good.status_code == 200 and json_of(good)["name"][0]["family"] == "Conn"
    wrong = sandbox.get(f"/sandbox/cerner/r4/00000000-0000-0000-0000-000000000000/Patient/{sandbox.patients['Conn']}")
    assert wrong.status_code == 403  # vendor-notes §3.1: not 404
    assert json_of(wrong)["issue"][0]["details"]["text"] == "Tenant not valid or accessible"


def test_athena_requires_ah_practice(sandbox: Sandbox) -> None:
    patient = sandbox.patients["Wiegand"]
    missing = sandbox.get(f"{sandbox.base('athena')}/Patient/{patient}")
    assert missing.status_code == 400 and "ah-practice" in json_of(missing)["details"]  # §4.2, not an OO
    other = sandbox.get(f"{sandbox.base('athena')}/Patient/{patient}?ah-practice=Organization/a-1.Practice-1")
    assert other.status_code == 403
    ok = sandbox.get(f"{sandbox.base('athena')}/Patient/{patient}?ah-practice={PRACTICE}")
    assert ok.status_code == 200 and json_of(ok)["id"] == patient
    assert sandbox.get(f"{sandbox.base('athena')}/metadata").status_code == 200  # discovery needs no practice


# ------------------------------------------------------------------ error shapes

def test_epic_unknown_type_is_an_html_404(sandbox: Sandbox) -> None:
    resp = sandbox.get(f"{sandbox.base('epic')}/NotAResource?patient=1")
    assert resp.status_code == 404
    assert resp.mimetype == "text/html"
    assert "404 - File or directory not found." in resp.get_data(as_text=True)


def test_epic_missing_id_is_59008(sandbox: Sandbox) -> None:
    resp = sandbox.get(f"{sandbox.base('epic')}/Patient/does-not-exist")
    assert resp.status_code == 404
    assert json_of(resp)["issue"][0]["details"]["coding"][0]["code"] == "59008"


def test_cerner_not_found_is_minimal(sandbox: Sandbox) -> None:
    for path in ("NotAResource", "Patient/does-not-exist"):
        resp = sandbox.get(f"{sandbox.base('cerner')}/{path}")
        assert resp.status_code == 404
        assert json_of(resp)["issue"] == [{"severity": "error", "code": "not-found", "details": {"text": "Not Found"}}]


def test_epic_invalid_token_is_an_empty_401(sandbox: Sandbox) -> None:
    resp = sandbox.get(f"{sandbox.base('epic')}/Patient/{sandbox.patients['Hintz']}", token="not-a-token")
    assert resp.status_code == 401 and resp.get_data() == b""
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


def test_epic_ignores_unknown_search_parameters(sandbox: Sandbox) -> None:
    patient = sandbox.patients["Hintz"]
    resp = sandbox.get(f"{sandbox.base('epic')}/Observation?patient={patient}&category=laboratory&bogus=1")
    assert resp.status_code == 200
    outcomes = [e for e in json_of(resp)["entry"] if e["search"]["mode"] == "outcome"]
    assert any("bogus" in i.get("diagnostics", "") for o in outcomes for i in o["resource"]["issue"])


# ------------------------------------------------------------------ content negotiation

@pytest.mark.parametrize("accept", [None, "*/*", "text/plain"])
def test_epic_answers_xml_unless_json_is_asked_for(sandbox: Sandbox, accept: str | None) -> None:
    resp = sandbox.get(f"{sandbox.base('epic')}/Patient/{sandbox.patients['Hintz']}", accept=accept)
    assert resp.status_code == 200 and resp.mimetype == "application/fhir+xml"
    body = resp.get_data(as_text=True)
    assert '<Patient xmlns="http://hl7.org/fhir">' in body and '<family value="Hintz"/>' in body


def test_cerner_refuses_non_json_with_an_empty_406(sandbox: Sandbox) -> None:
    resp = sandbox.get(f"{sandbox.base('cerner')}/Patient/{sandbox.patients['Conn']}", accept="application/fhir+xml")
    assert resp.status_code == 406 and resp.get_data() == b""
    plain = sandbox.get(f"{sandbox.base('cerner')}/Patient/{sandbox.patients['Conn']}", accept=None)
    assert plain.status_code == 200 and plain.mimetype == "application/fhir+json"


# ------------------------------------------------------------------ throttling

@pytest.fixture(scope="module")
def throttled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sb = build(Path(tmp_path_factory.mktemp("throttled")),
               overrides={name: {"rate_limit": {"every": 3, "retry_after": 7}}
                          for name in ("generic", "epic", "cerner", "athena")})
    yield sb
    sb.app.hub_app.extensions["telehub.fhir"].repository.engine.dispose()


@pytest.mark.parametrize("flavour,suffix", [("generic", ""), ("epic", ""), ("cerner", ""),
                                            ("athena", f"?ah-practice={PRACTICE}")])
def test_429_with_retry_after(throttled: Sandbox, flavour: str, suffix: str) -> None:
    url = f"{throttled.base(flavour)}/Patient/{throttled.patients['Hintz']}{suffix}"
    statuses = [throttled.get(url) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert statuses[2].headers["Retry-After"] == "7"
    assert json_of(statuses[2])["resourceType"] == "OperationOutcome"
    assert throttled.get(url).status_code == 200  # the next one goes through again


# ------------------------------------------------------------------ writes

@pytest.mark.parametrize("flavour,empty", [("epic", True), ("cerner", True), ("generic", False)])
def test_create_answers_the_flavours_way(sandbox: Sandbox, flavour: str, empty: bool) -> None:
    auth = sandbox.app.hub_app.extensions["telehub.auth"].services
    token = auth.tokens.issue(client_id="sandbox-test-adapter", user=None, scope="system/Observation.c",
                              lifetime=300)["access_token"]
    body = {"resourceType": "Observation", "status": "final", "code": {"text": "note"},
            "subject": {"reference": f"Patient/{sandbox.patients['Hintz']}"}}
    resp = sandbox.client.post(f"{sandbox.base(flavour)}/Observation", base_url="http://127.0.0.1:8080",
                               json=body, headers={"Authorization": f"Bearer {token}",
                                                   "Accept": "application/fhir+json",
                                                   "Content-Type": "application/fhir+json"})
    assert resp.status_code == 201
    assert resp.headers["Location"].startswith(f"http://127.0.0.1:8080{sandbox.base(flavour)}/Observation/")
    assert (resp.get_data() == b"") is empty


def test_injected_latency(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    import time
    from dataclasses import replace

    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)  # fhir_proxy calls time.sleep
    flavours = sandbox.app.fhir.flavours
    monkeypatch.setitem(flavours, "generic", replace(flavours["generic"], latency_ms=50))
    assert sandbox.get(f"{sandbox.base('generic')}/Patient/{sandbox.patients['Hintz']}").status_code == 200
    assert slept == [0.05]
