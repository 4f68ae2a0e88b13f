"""Structure validation: real data passes, each kind of error is found where it is, no value leaks."""
from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from fhir_gateway.definitions import resource_types
from fhir_gateway.errors import InvalidResource
from fhir_gateway.validation import Issue, ValidationFailed, check_resource, validate_resource
from fhir_gateway.validation.definitions import r4_definitions
from fhir_gateway.validation.r4b_models import differences, differences_for, model_class

REPO_ROOT = Path(__file__).resolve().parents[3]

# R4 examples that are not valid R4 themselves; everything else in the 775 must pass.
INVALID_R4_EXAMPLES = {
    # Questionnaire.item.linkId is 1..1 in R4, and 32 display items of this example have none
    "Questionnaire-qs1.json": {"required"},
}


def _expressions(issues: list[Issue]) -> list[str | None]:
    return [i.expression for i in issues]


def _one(resource: Any, **kwargs: Any) -> Issue:
    issues = validate_resource(resource, **kwargs)
    assert len(issues) == 1, issues
    return issues[0]


def patient(**elements: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", **elements}


def observation(**elements: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "BMI"}, **elements}


# ------------------------------------------------------------------ real data


@pytest.fixture(scope="module")
def synthea_small(shared_data: Path) -> list[tuple[str, dict[str, Any]]]:
    resources = []
    for path in sorted((shared_data / "synthea/small/ndjson").glob("*.ndjson")):
        with path.open(encoding="utf-8") as fh:
            resources += [(f"{path.name}:{n}", json.loads(line)) for n, line in enumerate(fh, 1) if line.strip()]
    assert len(resources) > 1000
    return resources


@pytest.fixture(scope="module")
def r4_examples(shared_data: Path) -> dict[str, dict[str, Any]]:
    examples = {}
    for path in sorted((shared_data / "fhir-r4/examples/resources").glob("*.json")):
        examples[path.name] = json.loads(path.read_text(encoding="utf-8"))
    assert len(examples) == 775
    return examples


@pytest.mark.parametrize("r4b_models", [True, False], ids=["with-r4b-models", "r4-walk-only"])
def test_every_synthea_small_resource_is_valid(synthea_small: list[tuple[str, dict[str, Any]]],
                                               r4b_models: bool) -> None:
    failures = {where: validate_resource(r, r4b_models=r4b_models) for where, r in synthea_small}
    assert {where: issues for where, issues in failures.items() if issues} == {}


@pytest.mark.parametrize("r4b_models", [True, False], ids=["with-r4b-models", "r4-walk-only"])
def test_every_r4_example_is_valid_except_the_invalid_ones(r4_examples: dict[str, dict[str, Any]],
                                                           r4b_models: bool) -> None:
    failing = {name: {i.code for i in validate_resource(r, r4b_models=r4b_models)}
               for name, r in r4_examples.items()}
    assert {name: codes for name, codes in failing.items() if codes} == INVALID_R4_EXAMPLES


def test_questionnaire_qs1_lacks_link_ids_in_r4_too(r4_examples: dict[str, dict[str, Any]]) -> None:
    issues = validate_resource(r4_examples["Questionnaire-qs1.json"])
    assert len(issues) == 32
    assert {i.expression.rsplit(".", 1)[1] for i in issues if i.expression} == {"linkId"}
    assert "Questionnaire.item[0].item[0].linkId" in _expressions(issues)


def test_r4_only_resource_types_are_validated_from_the_r4_table(r4_examples: dict[str, dict[str, Any]]) -> None:
    dropped = {d.owner for d in differences_for("MedicinalProduct") if d.kind == "type-dropped"}
    assert dropped == {"MedicinalProduct"}
    only_r4 = {name: r for name, r in r4_examples.items() if model_class(r["resourceType"]) is None}
    assert {r["resourceType"] for r in only_r4.values()} >= {
        "MedicinalProduct", "EffectEvidenceSynthesis", "RiskEvidenceSynthesis", "SubstanceSpecification"}
    for resource in only_r4.values():
        assert validate_resource(resource) == []
    product = copy.deepcopy(r4_examples["MedicinalProduct-example.json"])
    product["name"][0]["productNameTypo"] = "x"
    del product["name"][0]["productName"]
    assert _expressions(validate_resource(product)) == [
        "MedicinalProduct.name[0].productNameTypo", "MedicinalProduct.name[0].productName"]


def test_evidence_example_passes_only_because_r4b_is_relaxed(r4_examples: dict[str, dict[str, Any]]) -> None:
    evidence = r4_examples["Evidence-example.json"]
    evidence_model = model_class("Evidence")
    assert evidence_model is not None
    with pytest.raises(ValidationError):
        evidence_model.model_validate(evidence)  # R4B requires variableDefinition, forbids exposureBackground
    assert validate_resource(evidence) == []


def test_the_r4_table_knows_every_r4_resource_type() -> None:
    assert r4_definitions().resources == frozenset(resource_types())


def test_every_r4_r4b_difference_is_documented() -> None:
    doc = (REPO_ROOT / "docs/r4-r4b-differences.md").read_text(encoding="utf-8")
    missing = [d for d in differences() if f"| {d.owner} | {d.element or '(whole type)'} | {d.kind} |" not in doc]
    assert missing == []


def test_input_is_not_changed(r4_examples: dict[str, dict[str, Any]]) -> None:
    bundle = r4_examples["Bundle-bundle-transaction.json"]
    before = copy.deepcopy(bundle)
    validate_resource(bundle)
    assert bundle == before


# ------------------------------------------------------------------ one test per kind of error


def test_not_a_json_object() -> None:
    issue = _one([{"resourceType": "Patient"}])
    assert (issue.code, issue.expression) == ("structure", None)
    assert "JSON object" in issue.diagnostics


def test_missing_resource_type() -> None:
    assert _one({"id": "x"}).diagnostics == "resourceType is missing"


@pytest.mark.parametrize("value", ["Patients", "CodeableConcept", 42, "ClinicalUseDefinition"])
def test_unknown_resource_type(value: Any) -> None:
    # ClinicalUseDefinition is R4B-only: not an R4 resource type
    assert _one({"resourceType": value}).diagnostics == "resourceType is not a FHIR R4 resource type"


def test_resource_type_other_than_expected() -> None:
    issue = _one(observation(), expected_type="Patient")
    assert issue.code == "invalid"
    assert validate_resource(observation(), expected_type="Observation") == []


@pytest.mark.parametrize("rid", ["a_b", "a" * 65, "", "é", 7])
def test_bad_id(rid: Any) -> None:
    issue = _one(patient(id=rid))
    assert issue.expression == "Patient.id"


def test_id_of_64_characters_is_fine() -> None:
    assert validate_resource(patient(id="A-1." + "a" * 60)) == []


def test_unknown_element() -> None:
    issue = _one(patient(nickname="x"))
    assert (issue.code, issue.expression) == ("structure", "Patient.nickname")


def test_unknown_nested_element_names_its_path() -> None:
    issue = _one(patient(name=[{"family": "X"}, {"given": ["Y"], "middle": "Z"}]))
    assert issue.expression == "Patient.name[1].middle"
    assert "HumanName" in issue.diagnostics


def test_fhir_comments_is_not_r4_json() -> None:
    assert _one(patient(fhir_comments=["x"])).expression == "Patient.fhir_comments"


@pytest.mark.parametrize(("elements", "expression"), [
    ({"active": "true"}, "Patient.active"),
    ({"active": 1}, "Patient.active"),
    ({"multipleBirthInteger": "2"}, "Patient.multipleBirth.ofType(integer)"),
    ({"multipleBirthInteger": 2.0}, "Patient.multipleBirth.ofType(integer)"),
    ({"gender": 1}, "Patient.gender"),
    ({"maritalStatus": "married"}, "Patient.maritalStatus"),
    ({"extension": [{"url": "http://e.org/x", "valueDecimal": "1.5"}]}, "Patient.extension[0].value.ofType(decimal)"),
    ({"extension": [{"url": "http://e.org/x", "valueDecimal": True}]}, "Patient.extension[0].value.ofType(decimal)"),
])
def test_wrong_json_type(elements: dict[str, Any], expression: str) -> None:
    issue = _one(patient(**elements))
    assert (issue.code, issue.expression) == ("structure", expression)


def test_wrong_type_inside_a_choice_element() -> None:
    issue = _one(observation(valueQuantity={"value": "12.5", "unit": "kg"}))
    assert issue.expression == "Observation.value.ofType(Quantity).value"


@pytest.mark.parametrize(("elements", "expression"), [
    ({"birthDate": "1990-13-01"}, "Patient.birthDate"),
    ({"birthDate": "2021-02-30"}, "Patient.birthDate"),
    ({"birthDate": "1990-01-01T10:00:00Z"}, "Patient.birthDate"),
    ({"deceasedDateTime": "1990-01-01T10:00:00"}, "Patient.deceased.ofType(dateTime)"),
    ({"meta": {"lastUpdated": "2020-01-01"}}, "Patient.meta.lastUpdated"),
    ({"gender": " male"}, "Patient.gender"),
    ({"gender": ""}, "Patient.gender"),
    ({"photo": [{"size": -1}]}, "Patient.photo[0].size"),
    ({"photo": [{"data": "not base64!"}]}, "Patient.photo[0].data"),
    ({"implicitRules": "has spaces"}, "Patient.implicitRules"),
    ({"text": {"status": "generated", "div": "plain text"}}, "Patient.text.div"),
])
def test_bad_primitive_format(elements: dict[str, Any], expression: str) -> None:
    issue = _one(patient(**elements))
    assert (issue.code, issue.expression) == ("value", expression)


def test_positive_int_zero_and_integer_range() -> None:
    sampled = {"origin": {"value": 0}, "period": 1, "dimensions": 0, "data": "1 2"}
    assert _one(observation(valueSampledData=sampled)).expression == (
        "Observation.value.ofType(SampledData).dimensions")
    assert _one(patient(multipleBirthInteger=2**31)).code == "value"


def test_leap_second_and_partial_dates_are_fine() -> None:
    assert validate_resource(patient(birthDate="1990-02", deceasedDateTime="2016-12-31T23:59:60Z")) == []


def test_array_where_the_element_does_not_repeat() -> None:
    issue = _one(patient(gender=["male"]))
    assert (issue.code, issue.expression) == ("structure", "Patient.gender")
    assert "does not repeat" in issue.diagnostics


@pytest.mark.parametrize(("elements", "expression"), [
    ({"name": {"family": "X"}}, "Patient.name"),
    ({"name": [{"given": "John"}]}, "Patient.name[0].given"),
])
def test_single_value_where_the_element_repeats(elements: dict[str, Any], expression: str) -> None:
    issue = _one(patient(**elements))
    assert (issue.code, issue.expression) == ("structure", expression)
    assert "repeats" in issue.diagnostics


@pytest.mark.parametrize(("resource", "expression"), [
    ({"resourceType": "Observation", "status": "final"}, "Observation.code"),
    (patient(communication=[{"preferred": True}]), "Patient.communication[0].language"),
    (patient(extension=[{"valueString": "x"}]), "Patient.extension[0].url"),
    ({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
      "subject": {"reference": "Patient/1"}}, "MedicationRequest.medication"),
])
def test_missing_required_element(resource: dict[str, Any], expression: str) -> None:
    issue = _one(resource)
    assert (issue.code, issue.expression) == ("required", expression)


def test_required_primitive_may_be_just_an_extension() -> None:
    absent = {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                             "valueCode": "unknown"}]}
    assert validate_resource({"resourceType": "Observation", "_status": absent, "code": {"text": "x"}}) == []


def test_two_types_of_one_choice_element() -> None:
    issue = _one(patient(deceasedBoolean=True, deceasedDateTime="2020"))
    assert (issue.code, issue.expression) == ("structure", "Patient.deceased")


@pytest.mark.parametrize(("elements", "expression"), [
    ({"gender": None}, "Patient.gender"),
    ({"name": [None]}, "Patient.name[0]"),
    ({"name": []}, "Patient.name"),
    ({"name": [{}]}, "Patient.name[0]"),
    ({"name": [{"given": [None, "Y"]}]}, "Patient.name[0].given[0]"),
])
def test_null_and_empty(elements: dict[str, Any], expression: str) -> None:
    issue = _one(patient(**elements))
    assert (issue.code, issue.expression) == ("structure", expression)


def test_primitive_extension_siblings() -> None:
    ext = {"extension": [{"url": "http://e.org/x", "valueString": "y"}]}
    assert validate_resource(patient(_birthDate=ext)) == []
    assert validate_resource(patient(name=[{"given": [None, "Y"], "_given": [ext, None]}])) == []
    assert _one(patient(_birthDate={"value": "1990"})).expression == "Patient.birthDate.value"
    assert _one(patient(_name={"id": "1"})).expression == "Patient._name"  # name is not a primitive
    assert _one(patient(name=[{"given": ["Y"], "_given": [ext, ext]}])).expression == "Patient.name[0].given"


def test_contained_and_bundled_resources_are_checked_with_their_paths() -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": patient(contained=[{"resourceType": "Organization", "nom": "x"}])},
        {"resource": {"resourceType": "Patients"}},
        {"resource": {"id": "no-type"}},
        {"resource": {"resourceType": "SubstanceSpecification", "code": {"text": "not an array"}}},
    ]}
    assert _expressions(validate_resource(bundle)) == [
        "Bundle.entry[0].resource.contained[0].nom",
        "Bundle.entry[1].resource",
        "Bundle.entry[2].resource",
        "Bundle.entry[3].resource.code",
    ]


def test_every_issue_is_reported_not_just_the_first() -> None:
    issues = validate_resource(patient(active="yes", birthDate="x", foo=1, name=[{"given": "John"}]))
    assert _expressions(issues) == ["Patient.active", "Patient.birthDate", "Patient.foo", "Patient.name[0].given"]


# ------------------------------------------------------------------ R4 versus R4B


def test_r4_elements_r4b_dropped_are_accepted() -> None:
    meta_ext = {"url": "http://e.org/meta", "valueMeta": {"versionId": "1"}}
    assert validate_resource(patient(extension=[meta_ext])) == []
    evidence = {"resourceType": "Evidence", "status": "active", "exposureBackground": {"reference": "Group/1"},
                "topic": [{"text": "x"}]}
    assert validate_resource(evidence) == []


def test_r4b_only_elements_are_rejected() -> None:
    evidence = {"resourceType": "Evidence", "status": "active", "exposureBackground": {"reference": "Group/1"},
                "variableDefinition": [{"variableRole": {"text": "x"}}]}
    assert _one(evidence).expression == "Evidence.variableDefinition"
    dose = {"doseAndRate": [{"doseQuantity": {"value": 1, "comparator": "<"}}]}  # SimpleQuantity in R4
    issue = _one({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                  "medicationCodeableConcept": {"text": "x"}, "subject": {"reference": "Patient/1"},
                  "dosageInstruction": [dose]})
    assert issue.expression == "MedicationRequest.dosageInstruction[0].doseAndRate[0].dose.ofType(Quantity).comparator"


def test_a_model_that_breaks_on_bad_input_does_not_break_validation(caplog: pytest.LogCaptureFixture) -> None:
    # fhir.resources' url validator raises AttributeError (not a ValidationError) on a number
    subscription = {"resourceType": "Subscription", "status": "active", "reason": "x", "criteria": "Patient?",
                    "channel": {"type": "rest-hook", "endpoint": 4155550123}}
    with caplog.at_level(logging.WARNING):
        issue = _one(subscription)
    assert (issue.code, issue.expression) == ("structure", "Subscription.channel.endpoint")
    assert "R4 checks only" in caplog.text  # the model pass broke and was set aside
    assert "4155550123" not in caplog.text


def test_very_deep_nesting_is_an_issue_not_a_crash() -> None:
    item: dict[str, Any] = {"linkId": "x", "type": "group"}
    root = {"resourceType": "Questionnaire", "status": "active", "item": [item]}
    for _ in range(5000):
        child = {"linkId": "x", "type": "group"}
        item["item"] = [child]
        item = child
    assert "nested too deeply" in _one(root).diagnostics


# ------------------------------------------------------------------ errors and PHI


def test_check_resource_raises_one_error_with_every_issue() -> None:
    check_resource(patient(name=[{"family": "X"}]), expected_type="Patient")
    check_resource(patient(name=[{"family": "X"}]), r4b_models=False)
    with pytest.raises(ValidationFailed) as raised:
        check_resource(patient(active="yes", foo=1))
    error = raised.value
    assert isinstance(error, InvalidResource)
    assert error.status == 422
    outcome = error.outcome()
    assert outcome["resourceType"] == "OperationOutcome"
    assert [(i["severity"], i["code"], i["expression"]) for i in outcome["issue"]] == [
        ("error", "structure", ["Patient.active"]), ("error", "structure", ["Patient.foo"])]
    assert error.expression == ["Patient.active"]


def test_no_value_reaches_the_diagnostics() -> None:
    secret = "SECRET-7f3a"
    resource = patient(
        id=secret + "_x",
        active=secret,
        birthDate=secret,
        gender=[secret],
        multipleBirthInteger=secret,
        name=[{"family": {"text": secret}, "given": secret, secret: secret}],
        telecom=[{"system": "phone", "value": 5551234567}],
        photo=[{"data": secret + "!", "size": secret}],
        contained=[{"resourceType": secret}, {"resourceType": "Basic", "code": secret}],
        extension=[{"url": secret + " x", "valueUrl": 5551234567}],
        deceasedBoolean=secret,
        deceasedDateTime=secret,
        meta={"lastUpdated": secret, "tag": secret},
        text={"status": "generated", "div": secret},
        **{f"John Smith {secret}": 1, "_birthDate": secret},
    )
    issues = validate_resource(resource)
    assert len(issues) >= 15
    assert all(i.expression is None or "Patient" in i.expression for i in issues)
    rendered = json.dumps([i.as_outcome_issue() for i in issues])
    for leaked in (secret, "5551234567", "John", "Smith"):
        assert leaked not in rendered
    with pytest.raises(ValidationFailed) as raised:
        check_resource(resource)
    assert secret not in json.dumps(raised.value.outcome()) + str(raised.value)


def test_r4b_model_errors_are_translated_without_values() -> None:
    from fhir_gateway.validation.r4b_models import model_issues

    secret = "SECRET-9c1d"
    resource = patient(birthDate=secret, name=[{"given": secret}], extra=secret)
    issues = model_issues(resource, "Patient", [])
    assert {i.expression for i in issues} == {"Patient.birthDate", "Patient.name[0].given", "Patient.extra"}
    assert secret not in json.dumps([i.as_outcome_issue() for i in issues])


def test_r4b_error_locations_become_fhirpath() -> None:
    from fhir_gateway.validation.r4b_models import model_issues, resolve_location

    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": observation(valueQuantity={"value": 1})}, {"request": []}]}
    expression, pairs, crossed = resolve_location(bundle, "Bundle", ("entry", 0, "resource", "valueQuantity", "value"))
    assert expression == "Bundle.entry[0].resource.value.ofType(Quantity).value"
    assert pairs == [("Bundle", "entry"), ("Bundle.entry", "resource"), ("Observation", "valueQuantity"),
                     ("Quantity", "value")]
    assert crossed == ["Bundle", "Observation"]
    assert resolve_location(bundle, "Bundle", ("entry", 1, "_fullUrl", "extension", 0, "url"))[0] == (
        "Bundle.entry[1].fullUrl.extension[0].url")
    assert [i.expression for i in model_issues(bundle, "Bundle", [])] == ["Bundle.entry[1].request"]
