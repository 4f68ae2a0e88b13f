"""Licensure rules: state licences, compacts as data, the patient's location, FHIR round trip."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from smart_app.scheduling import compacts as compacts_mod
from smart_app.scheduling.compacts import default_rules, load
from smart_app.scheduling.errors import InvalidInput
from smart_app.scheduling.jurisdiction import address_state, patient_location
from smart_app.scheduling.licensure import Licence, licences_of, may_practise

from .conftest import patient, practitioner

RULES = default_rules()
DAY = date(2026, 12, 1)


def lic(state: str, kind: str = "state-licence", **kw: object) -> Licence:
    return Licence(state, "123", kind, start=kw.pop("start", date(2020, 1, 1)),  # type: ignore[arg-type]
                   end=kw.pop("end", date(2030, 1, 1)), **kw)  # type: ignore[arg-type]


def test_active_licence_in_the_patients_state_allows() -> None:
    d = may_practise([lic("NY"), lic("NJ")], "NJ", DAY, RULES)
    assert d.allowed and d.basis is not None and d.basis.state == "NJ" and "NJ licence" in d.reason


def test_no_licence_in_the_patients_state_is_refused_with_a_reason() -> None:
    d = may_practise([lic("NY")], "CA", DAY, RULES)
    assert not d.allowed
    assert d.reason.startswith("This provider is not licensed to see patients located in CA on 2026-12-01")
    assert "active licences: NY" in d.reason


@pytest.mark.parametrize(("licence", "words"), [
    (lic("CA", end=date(2026, 6, 30)), "expired on 2026-06-30"),
    (lic("CA", start=date(2027, 1, 1)), "starts on 2027-01-01"),
    (lic("CA", status="suspended"), "licence is suspended"),
])
def test_licence_must_be_active_on_the_visit_date(licence: Licence, words: str) -> None:
    d = may_practise([licence], "CA", DAY, RULES)
    assert not d.allowed and words in d.reason


def test_imlc_membership_is_not_a_licence() -> None:
    # CO and AZ are both IMLC members: the compact speeds licensure, it does not let a CO physician see AZ patients.
    d = may_practise([lic("CO", degree="MD")], "AZ", DAY, RULES)
    assert not d.allowed
    assert "Interstate Medical Licensure Compact membership only speeds up getting a AZ licence" in d.reason


def test_nlc_multistate_licence_is_honoured_in_member_states_only() -> None:
    nurse = [lic("TX", "nlc-multistate", degree="RN")]
    assert may_practise(nurse, "FL", DAY, RULES).allowed
    assert may_practise(nurse, "GU", DAY, RULES).allowed  # Guam honours others' multistate licences
    refused = may_practise(nurse, "CA", DAY, RULES)
    assert not refused.allowed
    # A "multistate" licence from a state that does not issue them (Guam, partial) is not honoured elsewhere.
    assert not may_practise([lic("GU", "nlc-multistate")], "TX", DAY, RULES).allowed
    # Massachusetts enacted but has not implemented: treat as non-compact.
    assert not may_practise(nurse, "MA", DAY, RULES).allowed


def test_psypact_authority_needs_an_active_home_licence_in_a_member_state() -> None:
    psychologist = [lic("PA", degree="PhD"), lic("PA", "psypact-apit")]
    d = may_practise(psychologist, "OH", DAY, RULES)
    assert d.allowed and d.compact == "psypact"
    assert not may_practise(psychologist, "CA", DAY, RULES).allowed  # CA is not in PSYPACT
    lapsed_home = [lic("PA", end=date(2026, 1, 1)), lic("PA", "psypact-apit")]
    assert not may_practise(lapsed_home, "OH", DAY, RULES).allowed


def test_compact_rules_are_data(tmp_path: Path) -> None:
    data = compacts_mod.DATA
    for f in data.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    toml = (tmp_path / "compacts.toml").read_text()
    (tmp_path / "compacts.toml").write_text(toml.replace('honouring_status_prefixes = ["implemented", '
                                                         '"partial implementation"]',
                                                         'honouring_status_prefixes = ["implemented", "enacted"]'))
    edited = load(tmp_path)
    assert may_practise([lic("TX", "nlc-multistate")], "MA", DAY, edited).allowed
    (tmp_path / "compacts.toml").write_text(toml.replace('kind = "multistate-licence"', 'kind = "magic"'))
    with pytest.raises(ValueError, match="kind must be one of"):
        load(tmp_path)


def test_licences_round_trip_through_practitioner_qualification() -> None:
    licences = [Licence("NY", "NY-1", start=date(2021, 1, 1), end=date(2027, 12, 31), degree="MD",
                        issuer="NYS Education Department"),
                Licence("TX", "TX-9", "nlc-multistate", status="inactive", degree="RN")]
    body = practitioner(licences)
    body["qualification"].append({"code": {"text": "Board certified, internal medicine"}})  # not a licence
    assert licences_of(body) == licences
    q = body["qualification"][0]
    assert q["identifier"][0]["extension"][0]["url"].endswith("us-core-jurisdiction")
    assert q["extension"][0]["extension"][0] == {"url": "status", "valueCode": "active"}


def test_patient_state_from_home_address_or_attested_location() -> None:
    p = patient("NY")
    p["address"].insert(0, {"use": "old", "state": "CA"})
    p["address"].append({"use": "temp", "state": "FL"})
    assert address_state(p, DAY) == "NY"
    assert patient_location(p, DAY, "nj") == patient_location(p, DAY, "New Jersey", RULES.jurisdiction_names())
    loc = patient_location(p, DAY, "NJ")
    assert loc is not None and loc.state == "NJ" and loc.source == "attested"
    ended = patient(None, address=[{"use": "home", "state": "NY", "period": {"end": "2026-01-01"}}])
    assert patient_location(ended, DAY) is None
    with pytest.raises(InvalidInput):
        patient_location(p, DAY, "Atlantis")
