"""Granted vs requested scopes, required search parameters, and athena's practice from the token."""
from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from fhir_gateway.upstream.errors import UpstreamConfigError
from fhir_gateway.upstream.paging import search_all
from fhir_gateway.upstream.params import check_search, missing_required
from fhir_gateway.upstream.scopes import compare
from sandbox_fixtures.recordings import path
from tests.fhir_gateway.upstream.conftest import ATHENA_BASE


def _epic_granted() -> list[str]:
    lines = path("epic", "backend-token-scope-response-2026-04-26.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip().startswith("system/")]


def test_epic_backend_grant_covers_v2_requests(profiles: Any) -> None:
    granted = _epic_granted()
    assert len(granted) == 151  # the real backend token's scope list
    report = compare(profiles.get("epic"), ["system/Patient.r", "system/Observation.s"], granted)
    assert report.ok, report.advice()


def test_cerner_silently_dropped_v1_scopes_are_explained(profiles: Any) -> None:
    report = compare(profiles.get("cerner"), ["system/Patient.read", "system/Observation.rs", "offline_access"],
                     "system/Observation.rs")
    assert report.missing == ["system/Patient.read", "offline_access"]
    assert report.known_drops == ["system/Patient.read", "offline_access"]
    assert "silently drops" in report.advice()


def test_athena_drops_write_scopes(profiles: Any) -> None:
    report = compare(profiles.get("athena"), ["system/Patient.read", "system/Appointment.write"],
                     "system/Patient.read")
    assert report.known_drops == ["system/Appointment.write"]


def test_required_parameters_from_the_profile(profiles: Any) -> None:
    epic = profiles.get("epic")
    assert missing_required(epic, "Observation", ["patient", "category"]) is None
    assert missing_required(epic, "Observation", ["patient", "code:text"]) is None
    assert missing_required(epic, "Observation", ["patient"]) == [["patient", "category"], ["patient", "code"]]
    with pytest.raises(UpstreamConfigError, match=r"Observation search on epic needs patient\+category"):
        check_search(epic, "Observation", ["patient"])
    with pytest.raises(UpstreamConfigError, match="does not support searching Provenance"):
        check_search(epic, "Provenance", ["target"])
    assert missing_required(profiles.get("generic-r4"), "Observation", []) is None
    cerner = profiles.get("cerner")
    assert missing_required(cerner, "Appointment", ["patient"]) is not None
    assert missing_required(cerner, "Appointment", ["patient", "-date-or-req-period"]) is None


def test_a_search_missing_its_required_parameter_is_not_sent(harness: Any) -> None:
    h = harness("epic")
    with pytest.raises(UpstreamConfigError, match="add it to the request"):
        search_all(h.client, "Observation", {"patient": "x"})
    assert not h.replay.seen


def test_athena_practice_comes_from_the_token_when_not_configured(harness: Any) -> None:
    h = harness("athena", practice=None)
    claims = base64.urlsafe_b64encode(json.dumps({"ah_practice": "a-1.Practice-195900"}).encode()).decode()
    h.replay.on("POST", "https://api.preview.platform.athenahealth.com/oauth2/v1/token",
                json_body={"access_token": f"e30.{claims.rstrip('=')}.sig", "expires_in": 300,
                           "scope": "system/Patient.read"})
    h.replay.on("GET", f"{ATHENA_BASE}/Encounter", params={"patient": "a-195900.E-8269", "_count": "50",
                                                          "ah-practice": "Organization/a-1.Practice-195900"},
                json_body={"resourceType": "Bundle", "type": "searchset", "entry": []})
    assert search_all(h.client, "Encounter", {"patient": "a-195900.E-8269"}).pages == 1
    assert h.client.tokens.granted() == "system/Patient.read"
