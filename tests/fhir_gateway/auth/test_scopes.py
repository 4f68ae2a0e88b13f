"""Sans-IO scope parsing and permission checks (SMART v1, v2, granular)."""
from __future__ import annotations

import pytest

from fhir_gateway.auth.scopes import Interaction, ScopeSyntaxError, allowed_subset, describe, parse_scopes

LAB = "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"


def test_v1_and_v2_parse() -> None:
    s = parse_scopes("openid fhirUser patient/Observation.read user/*.write launch/patient")
    assert s.has("openid") and s.has("launch/patient")
    assert s.permits(Interaction.SEARCH, "Observation", "patient")
    assert s.permits("r", "Observation") and not s.permits("c", "Observation", "patient")
    assert s.permits("u", "Appointment", "user") and not s.permits("r", "Appointment")


def test_v2_letters() -> None:
    s = parse_scopes("user/Appointment.cruds patient/Condition.rs")
    assert all(s.permits(c, "Appointment") for c in "cruds")
    assert not s.permits("d", "Condition")


def test_granular_filters() -> None:
    s = parse_scopes(LAB + " patient/Observation.rs?category=x|vital-signs")
    f = s.filters("s", "Observation", "patient")
    assert f == ((("category", "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"),),
                 (("category", "x|vital-signs"),))
    assert s.filters("s", "Condition") is None
    assert parse_scopes(LAB + " patient/Observation.rs").filters("r", "Observation") == ()


def test_invalid_scopes() -> None:
    with pytest.raises(ScopeSyntaxError):
        parse_scopes("patient/Observation.rx", strict=True)
    with pytest.raises(ScopeSyntaxError):
        parse_scopes("patient/Observation.read?category=a", strict=True)
    assert parse_scopes("patient/Observation.sr").unknown == ("patient/Observation.sr",)
    assert parse_scopes("bogus").unknown == ("bogus",)


def test_allowed_subset_never_widens() -> None:
    reg = "openid patient/*.rs system/Patient.rs"
    assert allowed_subset("openid patient/Observation.r patient/*.cruds " + LAB, reg) == ["openid",
                                                                                      "patient/Observation.r", LAB]
    assert allowed_subset("system/*.rs", reg) == []


def test_describe() -> None:
    assert describe("patient/Observation.rs") == "Read, search your Observation"
    assert "laboratory" in describe(LAB)
