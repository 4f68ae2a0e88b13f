"""Index extraction: expression forms, data shapes, composites, the fhirpathpy fallback, and whole corpora."""
from __future__ import annotations

import json
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fhir_gateway import definitions
from fhir_gateway.search.extract import IndexExtractor, compile_fhirpath
from fhir_gateway.search.fhirpath_compile import (
    ParsedReference,
    Unsupported,
    compile_branches,
    compile_getter,
    parse_reference,
)
from fhir_gateway.search.index_rows import IndexRows
from fhir_gateway.search.registry import SearchRegistry, default_registry
from fhir_gateway.search.values import MAX_TIME, MIN_TIME, date_range, normalize_string, number_range


@pytest.fixture(scope="module")
def extractor() -> IndexExtractor:
    return IndexExtractor(default_registry())


def rows(extractor: IndexExtractor, resource: dict[str, Any], table: str, param: str) -> list[Any]:
    return [r for r in getattr(extractor.extract(resource), table) if r.param == param]


def tokens(extractor: IndexExtractor, resource: dict[str, Any], param: str) -> set[tuple[Any, ...]]:
    return {(r.system, r.code, r.text) for r in rows(extractor, resource, "token", param)}


def strings(extractor: IndexExtractor, resource: dict[str, Any], param: str) -> set[tuple[str, str]]:
    return {(r.value, r.exact) for r in rows(extractor, resource, "string", param)}


def dates(extractor: IndexExtractor, resource: dict[str, Any], param: str) -> set[tuple[int, int]]:
    return {(r.low, r.high) for r in rows(extractor, resource, "date", param)}


def refs(extractor: IndexExtractor, resource: dict[str, Any], param: str) -> set[tuple[Any, ...]]:
    return {(r.target_type, r.target_id, r.url, r.version) for r in rows(extractor, resource, "reference", param)}


def quantities(extractor: IndexExtractor, resource: dict[str, Any], param: str) -> set[tuple[Any, ...]]:
    return {(r.value, r.low, r.high, r.system, r.code, r.unit) for r in rows(extractor, resource, "quantity", param)}


# --------------------------------------------------------------------------- token shapes


def test_token_codeable_concept_gives_a_row_per_coding_and_the_text(extractor: IndexExtractor) -> None:
    obs = {"resourceType": "Observation", "status": "final", "code": {
        "coding": [{"system": "http://loinc.org", "code": "8302-2", "display": "Body Height"},
                   {"system": "http://snomed.info/sct", "code": "50373000"}],
        "text": "Größe"}}
    assert tokens(extractor, obs, "code") == {
        ("http://loinc.org", "8302-2", "body height"),
        ("http://snomed.info/sct", "50373000", None),
        (None, None, normalize_string("Größe")),
    }


def test_token_codeable_concept_text_equal_to_a_display_is_not_repeated(extractor: IndexExtractor) -> None:
    obs = {"resourceType": "Observation", "code": {
        "coding": [{"system": "http://loinc.org", "code": "8302-2", "display": "Body Height"}], "text": "Body height"}}
    assert tokens(extractor, obs, "code") == {("http://loinc.org", "8302-2", "body height")}


def test_token_coding(extractor: IndexExtractor) -> None:
    patient = {"resourceType": "Patient", "meta": {"tag": [{"system": "urn:t", "code": "a", "display": "Ä tag"}],
                                                   "security": [{"system": "urn:s", "code": "R"}]}}
    assert tokens(extractor, patient, "_tag") == {("urn:t", "a", "a tag")}
    assert tokens(extractor, patient, "_security") == {("urn:s", "R", None)}


def test_token_identifier_with_type_text(extractor: IndexExtractor) -> None:
    patient = {"resourceType": "Patient", "identifier": [
        {"system": "http://hospital.example/mrn", "value": "MRN-1", "type": {"text": "Medical Record Number"}},
        {"value": "no-system"},
    ]}
    assert tokens(extractor, patient, "identifier") == {
        ("http://hospital.example/mrn", "MRN-1", "medical record number"),
        (None, "no-system", None),
    }


def test_token_contact_point_and_where_system_filter(extractor: IndexExtractor) -> None:
    patient = {"resourceType": "Patient", "telecom": [
        {"system": "phone", "value": "555-0100", "use": "home"},
        {"system": "email", "value": "carla@example.org"},
    ]}
    assert tokens(extractor, patient, "telecom") == {("phone", "555-0100", None), ("email", "carla@example.org", None)}
    assert tokens(extractor, patient, "phone") == {("phone", "555-0100", None)}
    assert tokens(extractor, patient, "email") == {("email", "carla@example.org", None)}


def test_token_primitives_code_boolean_and_id(extractor: IndexExtractor) -> None:
    patient = {"resourceType": "Patient", "id": "p1", "gender": "female", "active": False}
    assert tokens(extractor, patient, "gender") == {(None, "female", None)}
    assert tokens(extractor, patient, "active") == {(None, "false", None)}
    assert tokens(extractor, patient, "_id") == {(None, "p1", None)}
    patient["active"] = True
    assert tokens(extractor, patient, "active") == {(None, "true", None)}


def test_uri_rows(extractor: IndexExtractor) -> None:
    patient = {"resourceType": "Patient", "meta": {
        "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"], "source": "urn:src#1"}}
    assert [r.value for r in rows(extractor, patient, "uri", "_profile")] == [
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]
    assert [r.value for r in rows(extractor, patient, "uri", "_source")] == ["urn:src#1"]


# --------------------------------------------------------------------------- string shapes


def test_string_human_name_parts_and_full_name(extractor: IndexExtractor) -> None:
    patient = {"resourceType": "Patient", "name": [
        {"family": "Echevarría", "given": ["Carla", "María"], "prefix": ["Dr."], "suffix": ["PhD"]},
        {"text": "Carlita"},
    ]}
    assert strings(extractor, patient, "name") == {
        ("echevarria", "Echevarría"), ("carla", "Carla"), ("maria", "María"), ("dr.", "Dr."), ("phd", "PhD"),
        ("carla maria echevarria", "Carla María Echevarría"), ("carlita", "Carlita"),
    }
    assert strings(extractor, patient, "family") == {("echevarria", "Echevarría")}
    assert strings(extractor, patient, "given") == {("carla", "Carla"), ("maria", "María")}


def test_string_address_parts(extractor: IndexExtractor) -> None:
    patient = {"resourceType": "Patient", "address": [{
        "line": ["1077 Jenkins  Esplanade", "Suite 33"], "city": "Concord", "district": "Middlesex",
        "state": "MA", "postalCode": "01742", "country": "US", "text": "somewhere"}]}
    assert {v for v, _ in strings(extractor, patient, "address")} == {
        "1077 jenkins esplanade", "suite 33", "concord", "middlesex", "ma", "01742", "us", "somewhere"}
    assert strings(extractor, patient, "address-city") == {("concord", "Concord")}
    assert strings(extractor, patient, "address-postalcode") == {("01742", "01742")}


def test_string_plain_and_long_values_are_cut_to_the_column(extractor: IndexExtractor) -> None:
    org = {"resourceType": "Organization", "name": "Ünïversity Hospital " + "x" * 400}
    (row,) = rows(extractor, org, "string", "name")
    assert row.value.startswith("university hospital x")
    assert len(row.value) == 255
    assert row.exact == org["name"]


# --------------------------------------------------------------------------- date shapes


def test_date_precision_of_date_datetime_and_instant(extractor: IndexExtractor) -> None:
    patient = {"resourceType": "Patient", "birthDate": "2005-05"}
    assert dates(extractor, patient, "birthdate") == {date_range("2005-05")}
    obs = {"resourceType": "Observation", "effectiveInstant": "2011-04-19T22:53:17.776+00:00"}
    assert dates(extractor, obs, "date") == {date_range("2011-04-19T22:53:17.776+00:00")}


def test_date_period_with_open_ends(extractor: IndexExtractor) -> None:
    enc = {"resourceType": "Encounter", "period": {"start": "2020-01-01T10:00:00Z"}}
    low = date_range("2020-01-01T10:00:00Z")[0]
    assert dates(extractor, enc, "date") == {(low, MAX_TIME)}
    enc["period"] = {"end": "2020-01-02"}
    assert dates(extractor, enc, "date") == {(MIN_TIME, date_range("2020-01-02")[1])}
    enc["period"] = {"start": "2020-01-01", "end": "2020-01-03"}
    assert dates(extractor, enc, "date") == {(date_range("2020-01-01")[0], date_range("2020-01-03")[1])}


def test_date_timing_spans_events_and_bounds(extractor: IndexExtractor) -> None:
    plan: dict[str, Any] = {"resourceType": "CarePlan", "activity": [{"detail": {"scheduledTiming": {
        "event": ["2021-03-02", "2021-03-09"],
        "repeat": {"boundsPeriod": {"start": "2021-03-01", "end": "2021-03-31"}}}}}]}
    assert dates(extractor, plan, "activity-date") == {(date_range("2021-03-01")[0], date_range("2021-03-31")[1])}
    plan["activity"][0]["detail"] = {"scheduledTiming": {"event": ["2021-03-02"]}}
    assert dates(extractor, plan, "activity-date") == {date_range("2021-03-02")}
    plan["activity"][0]["detail"] = {"scheduledString": "daily"}
    assert dates(extractor, plan, "activity-date") == set()


# --------------------------------------------------------------------------- reference shapes


def test_reference_relative_versioned_absolute_urn_and_contained(extractor: IndexExtractor) -> None:
    def general_practitioner(ref: str) -> set[tuple[Any, ...]]:
        patient = {"resourceType": "Patient", "generalPractitioner": [{"reference": ref}]}
        return refs(extractor, patient, "general-practitioner")

    assert general_practitioner("Practitioner/12") == {("Practitioner", "12", None, None)}
    assert general_practitioner("Practitioner/12/_history/3") == {("Practitioner", "12", None, "3")}
    assert general_practitioner("https://ehr.example/fhir/Practitioner/12/_history/3") == {
        ("Practitioner", "12", "https://ehr.example/fhir/Practitioner/12", "3")}
    assert general_practitioner("urn:uuid:2f4c1a2e-0000-4000-8000-000000000001") == {
        (None, None, "urn:uuid:2f4c1a2e-0000-4000-8000-000000000001", None)}
    assert general_practitioner("#pr1") == set()


def test_reference_identifier_goes_to_the_token_table(extractor: IndexExtractor) -> None:
    obs = {"resourceType": "Observation", "subject": {
        "reference": "Patient/p1", "identifier": {"system": "urn:mrn", "value": "123"}}}
    assert refs(extractor, obs, "subject") == {("Patient", "p1", None, None)}
    assert tokens(extractor, obs, "subject:identifier") == {("urn:mrn", "123", None)}
    assert tokens(extractor, obs, "patient:identifier") == {("urn:mrn", "123", None)}


def test_reference_canonical_with_version(extractor: IndexExtractor) -> None:
    qr = {"resourceType": "QuestionnaireResponse",
          "questionnaire": "http://example.org/Questionnaire/phq-9|2.0"}
    assert refs(extractor, qr, "questionnaire") == {
        ("Questionnaire", "phq-9", "http://example.org/Questionnaire/phq-9", "2.0")}
    qr["questionnaire"] = "http://example.org/forms/phq9"
    assert refs(extractor, qr, "questionnaire") == {(None, None, "http://example.org/forms/phq9", None)}
    # a canonical that merely looks like another type's URL keeps only its URL
    qr["questionnaire"] = "http://example.org/Patient/phq-9"
    assert refs(extractor, qr, "questionnaire") == {(None, None, "http://example.org/Patient/phq-9", None)}


def test_reference_to_a_resource_indexes_its_type_and_id_within_the_targets(extractor: IndexExtractor) -> None:
    document = {"resourceType": "Bundle", "type": "document", "entry": [
        {"resource": {"resourceType": "Composition", "id": "c1"}},
        {"resource": {"resourceType": "Patient", "id": "p1"}}]}
    assert refs(extractor, document, "composition") == {("Composition", "c1", None, None)}
    collection = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p1"}}]}
    assert refs(extractor, collection, "composition") == set()


def test_reference_unknown_type_is_kept_as_url(extractor: IndexExtractor) -> None:
    patient = {"resourceType": "Patient", "managingOrganization": {"reference": "Nonsense/1"}}
    assert refs(extractor, patient, "organization") == {(None, None, "Nonsense/1", None)}


# --------------------------------------------------------------------------- quantity / number shapes


def test_quantity_precision_and_comparator(extractor: IndexExtractor) -> None:
    obs = {"resourceType": "Observation", "valueQuantity": {
        "value": 5.4, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}}
    assert quantities(extractor, obs, "value-quantity") == {
        (5.4, 5.35, 5.45, "http://unitsofmeasure.org", "mmol/L", "mmol/L")}
    obs["valueQuantity"] = {"value": 100, "comparator": "<", "code": "mg"}
    assert quantities(extractor, obs, "value-quantity") == {(100.0, None, 100.5, None, "mg", None)}
    obs["valueQuantity"] = {"value": 100, "comparator": ">=", "code": "mg"}
    assert quantities(extractor, obs, "value-quantity") == {(100.0, 99.5, None, None, "mg", None)}


def test_quantity_money_range_and_age(extractor: IndexExtractor) -> None:
    charge = {"resourceType": "ChargeItem", "priceOverride": {"value": 40, "currency": "EUR"}}
    assert quantities(extractor, charge, "price-override") == {(40.0, 39.5, 40.5, "urn:iso:std:iso:4217", "EUR", None)}
    cond = {"resourceType": "Condition", "onsetRange": {
        "low": {"value": 12, "unit": "a", "system": "http://unitsofmeasure.org", "code": "a"},
        "high": {"value": 18, "unit": "a", "system": "http://unitsofmeasure.org", "code": "a"}}}
    assert quantities(extractor, cond, "onset-age") == {(None, 12.0, 18.0, "http://unitsofmeasure.org", "a", "a")}
    cond = {"resourceType": "Condition", "onsetAge": {"value": 52, "unit": "yr", "code": "a"}}
    assert quantities(extractor, cond, "onset-age") == {(52.0, 51.5, 52.5, None, "a", "yr")}


def test_quantity_sampled_data_gives_no_row(extractor: IndexExtractor) -> None:
    obs = {"resourceType": "Observation", "valueSampledData": {"origin": {"value": 0}, "period": 10,
                                                                "dimensions": 1, "data": "1 2 3"}}
    assert quantities(extractor, obs, "value-quantity") == set()


def test_number_rows_use_significant_figures(extractor: IndexExtractor) -> None:
    risk = {"resourceType": "RiskAssessment", "prediction": [{"probabilityDecimal": 0.25}, {"probabilityRange": {
        "low": {"value": 0.1}}}]}
    assert {(r.value, r.low, r.high) for r in rows(extractor, risk, "number", "probability")} == {
        number_range("0.25")}
    seq = {"resourceType": "MolecularSequence", "variant": [{"start": 41197694, "end": 41197695}]}
    assert {(r.value, r.low, r.high) for r in rows(extractor, seq, "number", "variant-start")} == {
        number_range("41197694")}


# --------------------------------------------------------------------------- expression forms


def test_choice_types_become_suffixed_keys(extractor: IndexExtractor) -> None:
    obs: dict[str, Any] = {"resourceType": "Observation", "effectiveDateTime": "2020-03-04T10:00:00Z"}
    assert dates(extractor, obs, "date") == {date_range("2020-03-04T10:00:00Z")}
    obs = {"resourceType": "Observation", "effectivePeriod": {"start": "2020-03-04", "end": "2020-03-05"}}
    assert dates(extractor, obs, "date") == {(date_range("2020-03-04")[0], date_range("2020-03-05")[1])}
    branches = compile_branches("Observation.effective", "Observation")
    assert [b.ops for b in branches] == [(("key", "effectiveDateTime"),), (("key", "effectivePeriod"),),
                                         (("key", "effectiveTiming"),), (("key", "effectiveInstant"),)]


def test_as_restricts_a_choice_to_its_type(extractor: IndexExtractor) -> None:
    cond = {"resourceType": "Condition", "onsetDateTime": "2019-06-01"}
    assert dates(extractor, cond, "onset-date") == {date_range("2019-06-01")}
    assert rows(extractor, cond, "quantity", "onset-age") == []
    assert rows(extractor, cond, "string", "onset-info") == []
    cond = {"resourceType": "Condition", "onsetString": "in childhood"}
    assert strings(extractor, cond, "onset-info") == {("in childhood", "in childhood")}
    assert dates(extractor, cond, "onset-date") == set()
    # the ``as`` operator form: (Observation.value as CodeableConcept).text
    obs = {"resourceType": "Observation", "valueCodeableConcept": {"text": "Positive"}}
    assert strings(extractor, obs, "value-string") == {("positive", "Positive")}


def test_where_resolve_is_type_filters_references(extractor: IndexExtractor) -> None:
    obs = {"resourceType": "Observation", "subject": {"reference": "Group/g1"}}
    assert refs(extractor, obs, "subject") == {("Group", "g1", None, None)}
    assert refs(extractor, obs, "patient") == set()
    obs["subject"] = {"reference": "https://ehr.example/fhir/Patient/p9"}
    assert refs(extractor, obs, "patient") == {("Patient", "p9", "https://ehr.example/fhir/Patient/p9", None)}


def test_extension_where_url_value(extractor: IndexExtractor) -> None:
    patient = {"resourceType": "Patient", "extension": [
        {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race", "extension": [
            {"url": "ombCategory", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2106-3"}},
            {"url": "text", "valueString": "White"}]},
        {"url": "http://example.org/other", "extension": [{"url": "x", "valueCoding": {"code": "nope"}}]}]}
    assert tokens(extractor, patient, "race") == {(None, "2106-3", None)}
    cond = {"resourceType": "Condition", "extension": [
        {"url": "http://hl7.org/fhir/StructureDefinition/condition-assertedDate", "valueDateTime": "2020-02-02"}]}
    assert dates(extractor, cond, "asserted-date") == {date_range("2020-02-02")}


def test_union_of_paths(extractor: IndexExtractor) -> None:
    obs = {"resourceType": "Observation", "code": {"coding": [{"system": "s", "code": "panel"}]},
           "component": [{"code": {"coding": [{"system": "s", "code": "sys"}]}},
                         {"code": {"coding": [{"system": "s", "code": "dia"}]}}]}
    assert tokens(extractor, obs, "combo-code") == {("s", "panel", None), ("s", "sys", None), ("s", "dia", None)}
    assert tokens(extractor, obs, "component-code") == {("s", "sys", None), ("s", "dia", None)}


def test_duplicate_values_give_one_row(extractor: IndexExtractor) -> None:
    patient = {"resourceType": "Patient", "identifier": [{"system": "urn:x", "value": "1"}] * 3}
    assert len(rows(extractor, patient, "token", "identifier")) == 1


# --------------------------------------------------------------------------- composites


def blood_pressure() -> dict[str, Any]:
    def comp(code: str, value: float) -> dict[str, Any]:
        return {"code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            "component": [comp("8480-6", 120), comp("8462-4", 80)]}


def test_composite_components_share_a_group_per_element(extractor: IndexExtractor) -> None:
    result = extractor.extract(blood_pressure())
    codes = {r.grp: r.code for r in result.token if r.param == "component-code-value-quantity$0"}
    values = {r.grp: r.value for r in result.quantity if r.param == "component-code-value-quantity$1"}
    assert sorted(str(c) for c in codes.values()) == ["8462-4", "8480-6"]
    assert {codes[g]: values[g] for g in codes} == {"8480-6": 120.0, "8462-4": 80.0}
    # grp numbers are unique within the resource, across parameters
    groups = [(r.param.split("$")[0], r.grp) for table in ("token", "quantity")
              for r in getattr(result, table) if r.grp is not None]
    by_grp: dict[int, set[str]] = {}
    for param, grp in groups:
        assert grp is not None
        by_grp.setdefault(grp, set()).add(param)
    assert all(len(params) == 1 for params in by_grp.values())


def test_composite_on_the_resource_itself_and_combo(extractor: IndexExtractor) -> None:
    obs = {"resourceType": "Observation", "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
           "valueQuantity": {"value": 6.3, "code": "mmol/L"}}
    result = extractor.extract(obs)
    (code_row,) = [r for r in result.token if r.param == "code-value-quantity$0"]
    (value_row,) = [r for r in result.quantity if r.param == "code-value-quantity$1"]
    assert code_row.grp == value_row.grp is not None
    assert (code_row.code, value_row.value) == ("2339-0", 6.3)
    combo = [r for r in result.quantity if r.param == "combo-code-value-quantity$1"]
    assert len(combo) == 1
    # the element lacks a CodeableConcept value: no code-value-concept rows at all
    assert not [r for r in result.token if r.param.startswith("code-value-concept")]


def test_composite_with_percent_resource_component(extractor: IndexExtractor) -> None:
    seq = {"resourceType": "MolecularSequence", "referenceSeq": {"chromosome": {"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/chromosome-human", "code": "2"}]}},
        "variant": [{"start": 100, "end": 101}, {"start": 200, "end": 201}]}
    result = extractor.extract(seq)
    chrom = [r for r in result.token if r.param == "chromosome-variant-coordinate$0"]
    starts = {r.grp: r.value for r in result.number if r.param == "chromosome-variant-coordinate$1"}
    assert len(chrom) == 2 and {r.code for r in chrom} == {"2"}
    assert sorted(starts.values()) == [100.0, 200.0]
    assert {r.grp for r in chrom} == set(starts)


def test_composite_use_context(extractor: IndexExtractor) -> None:
    vs = {"resourceType": "ValueSet", "useContext": [
        {"code": {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type", "code": "age"},
         "valueRange": {"low": {"value": 18, "unit": "a"}}},
        {"code": {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type", "code": "focus"},
         "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "123"}]}}]}
    result = extractor.extract(vs)
    q = [r for r in result.quantity if r.param == "context-type-quantity$1"]
    assert [(r.value, r.low, r.high) for r in q] == [(None, 18.0, None)]
    (t,) = [r for r in result.token if r.param == "context-type-quantity$0"]
    assert t.code == "age" and t.grp == q[0].grp
    v = [r for r in result.token if r.param == "context-type-value$1"]
    assert [r.code for r in v] == ["123"]


# --------------------------------------------------------------------------- fhirpathpy fallback


def test_compile_stats_every_r4_expression_is_on_the_fast_path() -> None:
    stats = IndexExtractor(default_registry()).compile_all()
    assert stats.fast > 2500
    assert stats.fallback == 0, stats.fallback_params
    assert all(p.rsplit(".", 1)[1] in ("_text", "_content", "_query", "near") for p in stats.skipped_params)


def test_boolean_expression_patient_deceased(extractor: IndexExtractor) -> None:
    # Patient.deceased.exists() and Patient.deceased != false
    assert tokens(extractor, {"resourceType": "Patient", "deceasedDateTime": "2020-01-01"}, "deceased") == {
        (None, "true", None)}
    assert tokens(extractor, {"resourceType": "Patient", "deceasedBoolean": True}, "deceased") == {
        (None, "true", None)}
    assert tokens(extractor, {"resourceType": "Patient", "deceasedBoolean": False}, "deceased") == {
        (None, "false", None)}
    assert tokens(extractor, {"resourceType": "Patient"}, "deceased") == {(None, "false", None)}


@pytest.mark.parametrize(("expression", "resource", "expected"), [
    ("Patient.active.exists()", {"active": False}, [True]),
    ("Patient.active.empty()", {}, [True]),
    ("Patient.active = true", {"active": True}, [True]),
    ("Patient.active = true", {}, []),
    ("Patient.gender != 'male'", {"gender": "female"}, [True]),
    ("Patient.gender = 'male' or Patient.active = true", {"gender": "female"}, []),
    ("Patient.gender = 'male' or Patient.active = true", {"gender": "female", "active": True}, [True]),
    ("Patient.gender = 'male' and Patient.active = true", {"gender": "female"}, [False]),
    ("Patient.multipleBirth = 2", {"multipleBirthInteger": 2}, [True]),
    ("Patient.multipleBirth = 2", {"multipleBirthBoolean": True}, [False]),
])
def test_boolean_forms_follow_fhirpath(expression: str, resource: dict[str, Any], expected: list[bool]) -> None:
    resource = {"resourceType": "Patient", **resource}
    getter, branches = compile_getter(expression, "Patient")
    assert branches is None
    assert getter(resource, resource) == expected
    assert compile_fhirpath(expression)(resource, resource) == expected


def _custom_registry(*defs: dict[str, Any]) -> SearchRegistry:
    by_url = {d["url"]: d for d in definitions.search_parameter_definitions()}
    base = [by_url["http://hl7.org/fhir/SearchParameter/Observation-component-code"],
            by_url["http://hl7.org/fhir/SearchParameter/Observation-component-value-quantity"]]
    return SearchRegistry([*base, *defs], definitions.resource_types())


def test_fallback_resolve_is_type_and_composite() -> None:
    registry = _custom_registry(
        {"url": "urn:test:subject-patient", "code": "first-patient", "base": ["Observation"], "type": "reference",
         "expression": "Observation.subject.where(resolve() is Patient).first()", "target": ["Patient"]},
        {"url": "urn:test:coded-components", "code": "coded-component", "base": ["Observation"], "type": "composite",
         "expression": "Observation.component.where(code.exists())", "component": [
             {"definition": "http://hl7.org/fhir/SearchParameter/Observation-component-code", "expression": "code"},
             {"definition": "http://hl7.org/fhir/SearchParameter/Observation-component-value-quantity",
              "expression": "value.as(Quantity)"}]},
    )
    extractor = IndexExtractor(registry)
    stats = extractor.compile_all()
    assert sorted(p.split(":")[0] for p in stats.fallback_params) == [
        "Observation.coded-component", "Observation.first-patient"]
    obs = blood_pressure()
    obs["subject"] = {"reference": "Patient/p1"}
    assert refs(extractor, obs, "first-patient") == {("Patient", "p1", None, None)}
    obs["subject"] = {"reference": "Group/g1"}
    assert refs(extractor, obs, "first-patient") == set()
    result = extractor.extract(obs)
    codes = {r.grp: r.code for r in result.token if r.param == "coded-component$0"}
    values = {r.grp: r.value for r in result.quantity if r.param == "coded-component$1"}
    assert {codes[g]: values[g] for g in codes} == {"8480-6": 120.0, "8462-4": 80.0}


def test_an_expression_fhirpathpy_cannot_compile_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    registry = _custom_registry(
        {"url": "urn:test:broken", "code": "broken", "base": ["Observation"], "type": "token",
         "expression": "Observation.code @@@"})
    extractor = IndexExtractor(registry)
    with caplog.at_level(logging.WARNING, logger="fhir_gateway.search.extract"):
        stats = extractor.compile_all()
    assert "Observation.broken" in stats.skipped_params
    assert any("not indexed" in r.getMessage() for r in caplog.records)
    assert extractor.extract(blood_pressure()).token


def test_unsupported_forms_raise_for_the_fallback() -> None:
    for expression in ("Patient.name.first()", "Patient.deceased.exists() and Patient.deceased != false",
                       "Patient.name.where(given.exists())", "Patient.nosuchelement"):
        with pytest.raises(Unsupported):
            compile_branches(expression, "Patient")


def test_compiled_getter_forms() -> None:
    bundle = {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Composition", "id": "c"}},
                                                  {"resource": {"resourceType": "Patient", "id": "p"}}]}
    getter, _ = compile_getter("Bundle.entry[0].resource", "Bundle")
    assert getter(bundle, bundle) == [{"resourceType": "Composition", "id": "c"}]
    patient = {"resourceType": "Patient", "id": "x", "meta": {"tag": [{"code": "a"}, {"code": "b"}]}}
    getter, _ = compile_getter("Resource.meta.tag", "Patient")
    assert getter(patient, patient) == [{"code": "a"}, {"code": "b"}]
    getter, _ = compile_getter("Resource.id | Patient.meta.tag.code", "Patient")
    assert getter(patient, patient) == ["x", "a", "b"]
    getter, _ = compile_getter("Patient.name.given", "Patient")
    assert getter({"name": [{"given": ["A", "B"]}, {"given": ["C"]}, {}]}, {}) == ["A", "B", "C"]


def test_parse_reference() -> None:
    assert parse_reference("Patient/1") == ParsedReference("Patient", "1", None, None)
    assert parse_reference("#c1") is None
    assert parse_reference("http://x/fhir/Observation/o.1/_history/7") == ParsedReference(
        "Observation", "o.1", "http://x/fhir/Observation/o.1", "7")
    assert parse_reference("urn:oid:1.2.3") == ParsedReference(None, None, "urn:oid:1.2.3", None)
    assert parse_reference("http://x/ValueSet/v|1.0") == ParsedReference("ValueSet", "v", "http://x/ValueSet/v", "1.0")


# --------------------------------------------------------------------------- bad data


@pytest.mark.parametrize("resource", [
    {"resourceType": "Patient", "birthDate": "not-a-date", "name": "should be a list", "telecom": [None, 3],
     "identifier": {"value": 5}, "address": [{"line": [None, 7]}], "active": "yes"},
    {"resourceType": "Observation", "effectiveDateTime": "2020-13-45", "valueQuantity": {"value": "abc"},
     "subject": {"reference": 12}, "code": {"coding": "x"}, "component": ["oops", {"valueQuantity": None}]},
    {"resourceType": "Observation", "effectivePeriod": {"start": "2020-01-01", "end": "garbage"},
     "valueQuantity": {"value": float("nan")}, "code": []},
    {"resourceType": "Encounter", "period": "2020", "length": {"value": True}},
    {"resourceType": "CarePlan", "activity": [{"detail": {"scheduledTiming": {"event": "x", "repeat": 5}}}]},
    {"resourceType": "Patient", "deceasedBoolean": "maybe", "extension": [{"url": 5, "valueCoding": []}]},
    {"resourceType": "NoSuchType", "id": "1"},
    {"id": "no-type"},
])
def test_bad_data_never_raises(extractor: IndexExtractor, resource: dict[str, Any]) -> None:
    result = extractor.extract(resource)
    assert isinstance(result, IndexRows)
    if resource.get("resourceType") in ("Patient", "Observation"):
        # the unparsable dates, the non-numeric quantities and the wrong shapes gave no rows
        assert not [r for r in result.date if r.param in ("birthdate", "date")]
        assert not result.quantity


def test_unknown_resource_type_gives_no_rows(extractor: IndexExtractor) -> None:
    assert extractor.extract({"resourceType": "NoSuchType", "id": "1"}) == IndexRows()


# --------------------------------------------------------------------------- whole corpora


def _synthea(shared_data: Path) -> list[dict[str, Any]]:
    files = sorted((shared_data / "synthea" / "small" / "ndjson").glob("*.ndjson"))
    assert files
    out: list[dict[str, Any]] = []
    for path in files:
        with path.open(encoding="utf-8") as fh:
            out.extend(json.loads(line) for line in fh if line.strip())
    return out


def _params(result: IndexRows) -> set[str]:
    return {r.param for table in ("token", "string", "date", "reference", "quantity", "number", "uri")
            for r in getattr(result, table)}


def test_every_synthea_resource_extracts(shared_data: Path, caplog: pytest.LogCaptureFixture) -> None:
    extractor = IndexExtractor(default_registry())
    resources = _synthea(shared_data)
    with caplog.at_level(logging.DEBUG, logger="fhir_gateway.search.extract"):
        results = [(r, extractor.extract(r)) for r in resources]
    assert not caplog.records  # nothing was skipped as unconvertible in clean data
    seen_types = set()
    for resource, result in results:
        rtype = resource["resourceType"]
        seen_types.add(rtype)
        params = _params(result)
        assert "_id" in params
        if rtype == "Observation":
            assert {"patient", "subject", "code", "date", "status"} <= params
        elif rtype == "Patient":
            assert {"name", "family", "given", "birthdate", "identifier", "gender"} <= params
        elif rtype in ("Condition", "Procedure", "Encounter", "MedicationRequest", "Immunization", "Claim"):
            assert "patient" in params
    assert {"Observation", "Patient", "Encounter", "Condition"} <= seen_types


def test_every_r4_example_extracts(shared_data: Path, caplog: pytest.LogCaptureFixture) -> None:
    files = sorted((shared_data / "fhir-r4" / "examples" / "resources").glob("*.json"))
    assert len(files) > 700
    extractor = IndexExtractor(default_registry())
    with caplog.at_level(logging.DEBUG, logger="fhir_gateway.search.extract"):
        for path in files:
            resource = json.loads(path.read_text(encoding="utf-8"))
            result = extractor.extract(resource)
            params = _params(result)
            if "id" in resource:
                assert "_id" in params, path.name
            if resource["resourceType"] == "Observation":
                assert "code" in params, path.name
            if resource["resourceType"] == "Patient" and resource.get("name"):
                assert "name" in params, path.name
    assert not caplog.records


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=lambda o: float(o) if isinstance(o, Decimal) else str(o))


def test_fast_path_agrees_with_fhirpathpy_on_the_r4_examples(shared_data: Path) -> None:
    """Every compiled expression selects what fhirpathpy selects, on every R4 example.

    ``Resource.*`` expressions are left out (fhirpathpy does not match ``Resource``
    against a concrete type), and so are evaluations where fhirpathpy raises (its
    ``as`` refuses a collection of more than one item, which search expressions rely on).
    """
    registry = default_registry()
    compiled: dict[tuple[str, str], Any] = {}
    compared = 0
    for path in sorted((shared_data / "fhir-r4" / "examples" / "resources").glob("*.json")):
        resource = json.loads(path.read_text(encoding="utf-8"))
        rtype = resource["resourceType"]
        for param in registry.for_type(rtype).values():
            expression = param.expression
            if not expression or param.type in ("special", "composite") or expression.startswith("Resource."):
                continue
            key = (rtype, expression)
            if key not in compiled:
                try:
                    compiled[key] = (compile_getter(expression, rtype)[0], compile_fhirpath(expression))
                except Unsupported:
                    compiled[key] = None
            if compiled[key] is None:
                continue
            fast, slow = compiled[key]
            try:
                expected = {_canonical_json(v) for v in slow(resource, resource)}
            except Exception:
                continue
            assert {_canonical_json(v) for v in fast(resource, resource)} == expected, (path.name, expression)
            compared += 1
    assert compared > 10_000
