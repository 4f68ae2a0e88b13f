"""Structure validation of a resource on write (https://hl7.org/fhir/R4/validation.html).

Two checks, one result:

1. the R4 JSON format walk (``json_format``) against the R4 4.0.1 element table:
   exact R4, every resource type, including the ones R4B dropped;
2. the fhir.resources R4B models (``r4b_models``), with their errors translated to
   FHIRPath and dropped where R4B is stricter than R4.

An issue both checks find at the same element (or one inside the other) is reported
once, in the walk's words. Diagnostics name the element and the problem, never the
value: they end up in OperationOutcomes and logs.
"""
from __future__ import annotations

from typing import Any

from fhir_gateway.validation.issues import Issue, ValidationFailed
from fhir_gateway.validation.json_format import check_json_format
from fhir_gateway.validation.r4b_models import model_issues

__all__ = ["check_resource", "validate_resource"]


def _ancestors(expression: str) -> list[str]:
    """``Patient.name[0].given`` -> ``Patient``, ``Patient.name``, ``Patient.name[0]``."""
    return [expression[:i] for i, ch in enumerate(expression) if ch in ".["]


def _merge(issues: list[Issue], extras: list[Issue]) -> None:
    """Add the ``extras`` that are not at, inside or around an element ``issues`` already name."""
    named = {i.expression for i in issues if i.expression}
    around = {a for e in named for a in _ancestors(e)}
    for extra in extras:
        e = extra.expression
        if e is None or not (e in named or e in around or any(a in named for a in _ancestors(e))):
            issues.append(extra)


def validate_resource(resource: dict[str, Any], *, expected_type: str | None = None,
                      r4b_models: bool = True) -> list[Issue]:
    """Every structural problem of ``resource``; empty when it is valid R4.

    ``resource`` is what the JSON parser returned: anything that is not a JSON object
    with a known ``resourceType`` is itself an issue, never an exception.

    ``expected_type`` is the type the request addresses (``PUT /Patient/1``): a body of
    another type is an ``invalid`` issue. ``r4b_models=False`` skips the fhir.resources
    second opinion (the R4 walk alone is complete and several times faster).
    """
    try:
        issues, rtype, nested = check_json_format(resource)
    except RecursionError:
        return [Issue("structure", "the resource is nested too deeply to be checked")]
    if expected_type is not None and rtype is not None and rtype != expected_type:
        issues.insert(0, Issue("invalid", f"resourceType must be {expected_type} for this request"))
    if not r4b_models or rtype is None:
        return issues
    _merge(issues, model_issues(resource, rtype, nested))
    return issues


def check_resource(resource: dict[str, Any], *, expected_type: str | None = None,
                   r4b_models: bool = True) -> None:
    """Raise :class:`ValidationFailed` (an ``InvalidResource``, 422) listing every error of ``resource``."""
    issues = [i for i in validate_resource(resource, expected_type=expected_type, r4b_models=r4b_models)
              if i.severity == "error"]
    if issues:
        raise ValidationFailed(issues)
