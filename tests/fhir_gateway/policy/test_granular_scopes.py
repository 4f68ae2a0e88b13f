"""SMART granular scopes (``patient/Observation.rs?category=…``) narrow what a token sees: searches return
only matching resources (totals included), reads, history, includes, ``$everything`` and batch entries
outside the filter are refused, writes outside it are refused, and an unsupported filter grants nothing."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from fhir_gateway.app import create_app
from tests.fhir_gateway.auth.test_fhir_enforcement import Bearer
from tests.fhir_gateway.conftest import make_settings, patient

OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
COND_CAT = "http://terminology.hl7.org/CodeSystem/condition-category"
LAB = f"patient/Observation.rs?category={OBS_CAT}|laboratory"
PROBLEMS = f"patient/Condition.rs?category={COND_CAT}|problem-list-item"


def _obs(pid: str, category: str | None, text: str) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "Observation", "status": "final", "code": {"text": text},
                            "subject": {"reference": f"Patient/{pid}"}}
    if category:
        body["category"] = [{"coding": [{"system": OBS_CAT, "code": category}]}]
    return body


def _cond(pid: str, category: str) -> dict[str, Any]:
    return {"resourceType": "Condition", "subject": {"reference": f"Patient/{pid}"}, "code": {"text": category},
            "category": [{"coding": [{"system": COND_CAT, "code": category}]}]}


@dataclass
class World:
    app: Any
    auth: Any
    ids: dict[str, str]

    def token(self, scope: str, *, username: str | None = "alice", patient: str | None = "alice") -> Bearer:
        user = self.auth.users.by_username(username) if username else None
        context = {"patient": self.ids[patient]} if patient else None
        body = self.auth.tokens.issue(client_id="app", user=user, scope=scope, context=context)
        return Bearer(self.app, body["access_token"])


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    app = create_app(make_settings(database_url, auth="smart"))
    auth = app.extensions["telehub.auth"].services
    auth.clients.add("app", client_type="public", redirect_uris=["https://x.example/cb"], scope="system/*.cruds")
    admin = Bearer(app, auth.tokens.issue(client_id="app", user=None, scope="system/*.cruds")["access_token"])
    ids: dict[str, str] = {}
    ids["alice"] = admin.create(patient(family="Alice"))["id"]
    ids["bob"] = admin.create(patient(family="Bob"))["id"]
    ids["lab"] = admin.create(_obs(ids["alice"], "laboratory", "glucose"))["id"]
    ids["vital"] = admin.create(_obs(ids["alice"], "vital-signs", "heart rate"))["id"]
    ids["plain"] = admin.create(_obs(ids["alice"], None, "note"))["id"]
    ids["bob_lab"] = admin.create(_obs(ids["bob"], "laboratory", "glucose"))["id"]
    ids["problem"] = admin.create(_cond(ids["alice"], "problem-list-item"))["id"]
    ids["diagnosis"] = admin.create(_cond(ids["alice"], "encounter-diagnosis"))["id"]
    auth.users.add("alice", "correct horse battery", "patient", patient=ids["alice"])
    auth.users.add("drew", "correct horse battery", "physician", fhir_user="Practitioner/drew")
    yield World(app, auth, ids)
    app.extensions["telehub.fhir"].repository.engine.dispose()


def _ids(bundle: dict[str, Any], rtype: str | None = None) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", [])
            if rtype is None or e["resource"]["resourceType"] == rtype}


def test_search_returns_only_resources_matching_the_filter_with_matching_totals(world: World) -> None:
    me = world.token(f"{LAB} {PROBLEMS} patient/Patient.r")
    found = me.search("Observation?_total=accurate")
    assert _ids(found) == {world.ids["lab"]} and found["total"] == 1
    assert _ids(me.search("Observation?category=vital-signs")) == set()
    assert _ids(me.search(f"Observation?_id={world.ids['vital']}")) == set()
    assert _ids(me.search("Condition")) == {world.ids["problem"]}
    assert me.search("Observation?_summary=count")["total"] == 1


def test_reads_vreads_and_history_outside_the_filter_are_refused(world: World) -> None:
    me = world.token(f"{LAB} patient/Patient.r")
    assert me.get(f"Observation/{world.ids['lab']}").status_code == 200
    assert me.get(f"Observation/{world.ids['vital']}").status_code == 403
    assert me.get(f"Observation/{world.ids['plain']}").status_code == 403
    assert me.get(f"Observation/{world.ids['vital']}/_history/1").status_code == 403
    history = me.get(f"Observation/{world.ids['vital']}/_history").get_json()
    assert not [e for e in history.get("entry", []) if "resource" in e]
    type_history = me.get("Observation/_history").get_json()
    assert {e["resource"]["id"] for e in type_history.get("entry", []) if "resource" in e} == {world.ids["lab"]}


def test_includes_revincludes_chains_and_has_cannot_escape_the_filter(world: World) -> None:
    me = world.token(f"{LAB} patient/Patient.rs")
    bundle = me.search("Patient?_revinclude=Observation:subject")
    assert _ids(bundle, "Observation") == {world.ids["lab"]}
    assert _ids(bundle, "Patient") == {world.ids["alice"]}
    assert _ids(me.search("Observation?subject:Patient.family=Alice")) == {world.ids["lab"]}
    # _has and chains only look at resources the token may see: no probing hidden vital signs
    assert _ids(me.search("Patient?_has:Observation:subject:code:text=heart")) == set()
    assert _ids(me.search("Patient?_has:Observation:subject:code:text=glucose")) == {world.ids["alice"]}
    conds = world.token(f"{PROBLEMS} {LAB}")
    assert _ids(conds.search("Condition?subject:Patient.family=Alice")) == set()  # no Patient scope to chain through
    # Observation.rs alone does not let an _include reach Patient
    lab_only = world.token(LAB)
    assert _ids(lab_only.search("Observation?_include=Observation:subject"), "Patient") == set()


def test_everything_and_batch_entries_honour_the_filter(world: World) -> None:
    me = world.token(f"{LAB} {PROBLEMS} patient/Patient.rs")
    everything = me.get(f"Patient/{world.ids['alice']}/$everything").get_json()
    assert _ids(everything, "Observation") == {world.ids["lab"]}
    assert _ids(everything, "Condition") == {world.ids["problem"]}
    batch = me.post("", {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": f"Observation/{world.ids['lab']}"}},
        {"request": {"method": "GET", "url": f"Observation/{world.ids['vital']}"}},
        {"request": {"method": "GET", "url": "Observation?category=vital-signs"}}]}).get_json()
    statuses = [e["response"]["status"] for e in batch["entry"]]
    assert statuses[0].startswith("200") and statuses[1].startswith("403")
    assert not batch["entry"][2]["resource"].get("entry")


def test_user_level_granular_scope_spans_patients_but_only_matching_resources(world: World) -> None:
    doc = world.token(f"user/Observation.rs?category={OBS_CAT}|laboratory", username="drew", patient=None)
    assert _ids(doc.search("Observation")) == {world.ids["lab"], world.ids["bob_lab"]}
    assert doc.get(f"Observation/{world.ids['vital']}").status_code == 403


def test_writes_outside_a_filtered_write_scope_are_refused(world: World) -> None:
    doc = world.token(f"user/Observation.cruds?category={OBS_CAT}|vital-signs", username="drew", patient=None)
    ok = doc.post("Observation", _obs(world.ids["bob"], "vital-signs", "bp"))
    assert ok.status_code == 201
    refused = doc.post("Observation", _obs(world.ids["bob"], "laboratory", "glucose"))
    assert refused.status_code == 403
    assert refused.get_json()["resourceType"] == "OperationOutcome"


def test_an_unfiltered_scope_for_the_type_lifts_the_filter(world: World) -> None:
    me = world.token(f"{LAB} patient/Observation.rs")
    assert _ids(me.search("Observation")) == {world.ids["lab"], world.ids["vital"], world.ids["plain"]}


@pytest.mark.parametrize("scope", ["patient/Observation.rs?date=gt2000", "patient/Observation.rs?category:not=x",
                                   "patient/Observation.rs?nonsense=1"])
def test_an_unsupported_filter_fails_closed(world: World, scope: str) -> None:
    me = world.token(scope)
    assert _ids(me.search("Observation")) == set()
    assert me.get(f"Observation/{world.ids['lab']}").status_code == 403
