"""Launch context parsing: need_patient_banner as a boolean or a string, vendor extras kept, scopes checked."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from smart_app.smart.context import as_bool, parse_context, require_scopes
from smart_app.smart.errors import MissingScopes

EPIC_TOKEN = Path(__file__).resolve().parents[2] / "sandbox_fixtures" / "recordings" / "epic" / \
    "ehr-launch_token-response_apotti-production.json"


@pytest.mark.parametrize("value,expected", [
    (True, True), (False, False), ("true", True), ("false", False), ("True", True), ("FALSE", False),
    (1, True), (0, False)])
def test_need_patient_banner_bool_or_string(value: Any, expected: bool) -> None:
    body: dict[str, Any] = {"access_token": "x", "scope": "launch", "patient": "p1", "need_patient_banner": value}
    assert parse_context(body).need_patient_banner is expected
    assert as_bool(value) is expected


def test_need_patient_banner_absent_or_unreadable_shows_it_when_there_is_a_patient() -> None:
    assert parse_context({"access_token": "x", "patient": "p1"}).need_patient_banner is True
    assert parse_context({"access_token": "x", "patient": "p1", "need_patient_banner": "maybe"}).need_patient_banner
    assert parse_context({"access_token": "x"}).need_patient_banner is False


def test_real_epic_token_response() -> None:
    body = json.loads(EPIC_TOKEN.read_text())
    context = parse_context(body)
    assert body["need_patient_banner"] == "true" and context.need_patient_banner is True
    assert context.patient == body["patient"] and context.smart_style_url
    assert {"deptID", "loginDepartment", "__epic.dstu2.patient"} <= set(context.extras)
    assert "access_token" not in context.extras


def test_fhir_user_from_id_token_claims() -> None:
    context = parse_context({"access_token": "x", "scope": "openid fhirUser"},
                            {"fhirUser": "https://ehr/fhir/Practitioner/7"})
    assert context.fhir_user == "https://ehr/fhir/Practitioner/7"


def test_missing_scopes_names_them() -> None:
    context = parse_context({"access_token": "x", "scope": "launch openid"})
    with pytest.raises(MissingScopes, match=r"fhirUser, patient/Patient\.rs"):
        require_scopes(context, {"launch", "openid", "fhirUser", "patient/Patient.rs"})
