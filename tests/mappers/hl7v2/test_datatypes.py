"""Datatype converters against the IG datatype maps (DTM, CX, XTN, CWE, XAD, SN, PL)."""

from __future__ import annotations

from typing import Any

import pytest

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes.primitives import dtm
from mappers.hl7v2.engine import apply_datatype
from mappers.hl7v2.parser import parse
from mappers.hl7v2.parser.encoding import Delimiters
from mappers.hl7v2.parser.message import Value
from tests.mappers.hl7v2.conftest import ADT_A01


def value(raw: str) -> Value:
    return Value(raw, Delimiters())


@pytest.fixture
def ctx() -> Context:
    return Context(parse(ADT_A01))


@pytest.mark.parametrize(("raw", "expected"), [
    ("2024", "2024"),
    ("202401", "2024-01"),
    ("20240105", "2024-01-05"),
    ("202401050830", "2024-01-05T08:30:00Z"),
    ("20240105083015.1234-0500", "2024-01-05T08:30:15.1234-05:00"),
    ("198908181126+0215", "1989-08-18T11:26:00+02:15"),
    ("20241305", None),
    ("not a date", None),
])
def test_dtm_keeps_precision_and_zone(raw: str, expected: str | None) -> None:
    assert dtm(raw) == expected


def test_dtm_default_offset_is_configurable() -> None:
    assert dtm("202401050830", "-05:00") == "2024-01-05T08:30:00-05:00"


def test_cx_identifier_with_iso_authority(ctx: Context) -> None:
    out = apply_datatype("CX[Identifier]", value("MRN1^^^GHH&2.16.840.1.1&ISO^MR^^20200101^20301231"), ctx)
    assert out == {
        "value": "MRN1", "system": "urn:oid:2.16.840.1.1",
        "type": {"coding": [{"code": "MR", "display": "Medical record number",
                             "system": "http://terminology.hl7.org/CodeSystem/v2-0203"}]},
        "period": {"start": "2020-01-01", "end": "2030-12-31"},
    }


def test_cx_local_authority_gets_placeholder_system(ctx: Context) -> None:
    out = apply_datatype("CX[Identifier]", value("42^^^Local Clinic"), ctx)
    assert out == {"value": "42", "system": "urn:id:Local_Clinic"}


@pytest.mark.parametrize(("raw", "expected"), [
    ("^PRN^PH^^1^617^5551234^22", {"system": "phone", "use": "home", "value": "+1 617 5551234 X22"}),
    ("^NET^Internet^a@b.org", {"system": "email", "value": "a@b.org"}),
    ("(617)555-1234^WPN^PH", {"system": "phone", "use": "work", "value": "(617)555-1234"}),
])
def test_xtn_contact_point(ctx: Context, raw: str, expected: dict[str, Any]) -> None:
    assert apply_datatype("XTN[ContactPoint]", value(raw), ctx) == expected


def test_cwe_resolves_systems_and_alternate_coding(ctx: Context) -> None:
    out = apply_datatype("CWE[CodeableConcept]", value("2345-7^Glucose^LN^GLU^Glucose local^99LAB^^^Blood sugar"), ctx)
    assert out == {
        "coding": [{"code": "2345-7", "display": "Glucose", "system": "http://loinc.org"},
                   {"code": "GLU", "display": "Glucose local", "system": "urn:id:99LAB"}],
        "text": "Blood sugar",
    }


def test_cwe_with_vocabulary_uses_the_ig_concept_map(ctx: Context) -> None:
    out = apply_datatype("CWE[CodeableConcept]", value("E"), ctx, "AdmissionType")
    assert out == {"coding": [{"code": "E", "display": "Emergency",
                               "system": "http://terminology.hl7.org/CodeSystem/v2-0007"}]}


def test_xad_address(ctx: Context) -> None:
    out = apply_datatype("XAD[Address]", value("1 Main St&Main St&1^Apt 2^Boston^MA^02115^USA^H"), ctx)
    assert out == {"line": ["1 Main St", "Main St", "1", "Apt 2"], "city": "Boston", "state": "MA",
                   "postalCode": "02115", "country": "USA", "use": "home"}


def test_sn_variants(ctx: Context) -> None:
    assert apply_datatype("SN[Quantity]", value(">^10"), ctx) == {"value": 10, "comparator": ">"}
    assert apply_datatype("SN[Ratio]", value("^1^:^128"), ctx) == {"numerator": {"value": 1},
                                                                  "denominator": {"value": 128}}
    assert apply_datatype("SN[Range]", value("^10^-^20"), ctx) == {"low": {"value": 10}, "high": {"value": 20}}


def test_pl_builds_a_location_hierarchy(ctx: Context) -> None:
    target = apply_datatype("PL[Location]", value("W1^101^A^GHH"), ctx)
    locations = {r["name"]: r for r in ctx.resources if r["resourceType"] == "Location"}
    assert target is locations["W1"]
    assert locations["A"]["partOf"]["reference"] == ctx.urls[locations["101"]["_key"]]
    assert locations["W1"]["partOf"]["reference"] == ctx.urls[locations["GHH"]["_key"]]
