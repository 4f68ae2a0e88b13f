"""``_summary`` and ``_elements`` on single resources (https://hl7.org/fhir/R4/search.html#summary)."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fhir_gateway.errors import InvalidRequest
from fhir_gateway.rest.elements import SUBSETTED_SYSTEM, apply_elements, apply_summary

SUBSETTED_TAG = {"system": SUBSETTED_SYSTEM, "code": "SUBSETTED", "display": "subsetted"}


@pytest.fixture(scope="module")
def example(shared_data: Path) -> Any:
    def load(name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((shared_data / "fhir-r4/examples/resources" / name).read_text())
        return data
    return load


def patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "p1",
        "meta": {"versionId": "3", "tag": [{"system": "http://e.org/tags", "code": "vip"}]},
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Jo</div>"},
        "extension": [{"url": "http://e.org/x", "valueString": "x"}],
        "identifier": [{"system": "http://e.org/mrn", "value": "123"}],
        "active": True,
        "name": [{"family": "Doe", "given": ["Jo"]}],
        "gender": "female",
        "birthDate": "1990-01-01",
        "_birthDate": {"extension": [{"url": "http://e.org/time", "valueDateTime": "1990-01-01T10:00:00Z"}]},
        "deceasedBoolean": False,
        "maritalStatus": {"text": "single"},
        "contact": [{"name": {"family": "Roe"}}],
        "communication": [{"language": {"text": "en"}}],
    }


def tags(resource: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = resource["meta"]["tag"]
    return result


def test_summary_true_keeps_summary_elements_and_tags_the_result() -> None:
    source = patient()
    before = copy.deepcopy(source)
    out = apply_summary(source, "true")
    assert list(out) == ["resourceType", "id", "meta", "identifier", "active", "name", "gender", "birthDate",
                         "_birthDate", "deceasedBoolean"]
    assert tags(out) == [{"system": "http://e.org/tags", "code": "vip"}, SUBSETTED_TAG]
    assert out["meta"]["versionId"] == "3"
    assert source == before  # the input, meta.tag included, is untouched


def test_summary_true_selects_choice_elements_by_base_name(example: Any) -> None:
    bmi = example("Observation-bmi.json")
    out = apply_summary(bmi, "true")
    assert {"effectiveDateTime", "valueQuantity", "status", "code", "subject"} <= set(out)
    assert not {"text", "category"} & set(out)


def test_summary_keeps_mandatory_elements_that_are_not_summary(example: Any) -> None:
    # AuditEvent.agent and .source are 1..* / 1..1 but not isSummary
    audit = example("AuditEvent-example.json")
    out = apply_summary(audit, "true")
    assert {"type", "recorded", "agent", "source"} <= set(out)
    assert "entity" in audit and "entity" not in out


def test_summary_text_keeps_text_id_meta_and_mandatory(example: Any) -> None:
    out = apply_summary(example("Observation-bmi.json"), "text")
    assert list(out) == ["resourceType", "id", "meta", "text", "status", "code"]
    assert SUBSETTED_TAG in tags(out)


def test_summary_data_removes_text_only() -> None:
    source = patient()
    out = apply_summary(source, "data")
    assert set(source) - set(out) == {"text"}
    assert SUBSETTED_TAG in tags(out)


def test_nothing_removed_means_no_subsetted_tag() -> None:
    source = {"resourceType": "Patient", "id": "p1", "active": True}
    assert apply_summary(source, "data") == source
    assert "meta" not in apply_elements(source, ["active"])


def test_summary_false_is_a_copy_of_everything() -> None:
    source = patient()
    out = apply_summary(source, "false")
    assert out == source
    assert out is not source


def test_unknown_summary_mode_is_a_client_error() -> None:
    with pytest.raises(InvalidRequest):
        apply_summary(patient(), "count")  # type: ignore[arg-type]


def test_elements_keeps_listed_and_mandatory_elements(example: Any) -> None:
    bmi = example("Observation-bmi.json")
    before = copy.deepcopy(bmi)
    out = apply_elements(bmi, ["subject", "value"])
    assert list(out) == ["resourceType", "id", "meta", "status", "code", "subject", "valueQuantity"]
    assert SUBSETTED_TAG in tags(out)
    assert out["meta"]["profile"] == bmi["meta"]["profile"]
    assert bmi == before


def test_elements_keeps_primitive_extension_siblings() -> None:
    out = apply_elements(patient(), ["birthDate"])
    assert out["_birthDate"] == patient()["_birthDate"]
    assert "gender" not in out


@pytest.mark.parametrize("entries", [
    ["deceased"], ["deceasedBoolean"], [" deceased "], ["Patient.deceased"], ["Patient.deceased.value"],
])
def test_elements_name_forms(entries: list[str]) -> None:
    out = apply_elements(patient(), entries)
    assert set(out) == {"resourceType", "id", "meta", "deceasedBoolean"}


def test_elements_of_other_types_are_ignored() -> None:
    out = apply_elements(patient(), ["Observation.code", "Patient.gender", ""])
    assert set(out) == {"resourceType", "id", "meta", "gender"}


def test_elements_without_id_or_meta_in_the_input() -> None:
    out = apply_elements({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                          "subject": {"reference": "Patient/1"}}, ["nothing"])
    assert out == {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                   "meta": {"tag": [SUBSETTED_TAG]}}


def test_subsetted_tag_is_not_added_twice() -> None:
    once = apply_summary(patient(), "true")
    twice = apply_summary(once | {"text": {"status": "empty", "div": "<div/>"}}, "data")
    assert [t for t in tags(twice) if t.get("code") == "SUBSETTED"] == [SUBSETTED_TAG]


def test_unknown_resource_type_keeps_only_the_basics() -> None:
    out = apply_summary({"resourceType": "Nope", "id": "1", "foo": 1}, "true")
    assert set(out) == {"resourceType", "id", "meta"}
