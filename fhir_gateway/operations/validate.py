"""$validate: https://hl7.org/fhir/R4/resource-operation-validate.html.

Validates the resource in the body (or a Parameters ``resource``) against the
R4 structure, and for ``mode=delete`` checks the target exists. Always answers
200 with an OperationOutcome describing the result.
"""
from __future__ import annotations

from typing import Any

from fhir_gateway.errors import FhirError, InvalidRequest
from fhir_gateway.operations.registry import Operation, parameters_value, register
from fhir_gateway.rest.context import Interaction
from fhir_gateway.rest.messages import FhirRequest, FhirResponse

OK = {"resourceType": "OperationOutcome",
      "issue": [{"severity": "information", "code": "informational", "diagnostics": "validation successful"}]}


def validate(it: Interaction, req: FhirRequest, rtype: str | None, fid: str | None) -> FhirResponse:
    mode = parameters_value(req, "mode")
    if mode == "delete":
        if fid is None or rtype is None:
            raise InvalidRequest("mode=delete needs an instance ($validate on Type/id)")
        it.current(rtype, fid)
        return FhirResponse(200, OK)
    resource: Any = req.body
    if isinstance(resource, dict) and resource.get("resourceType") == "Parameters":
        resource = parameters_value(req, "resource")
    if not isinstance(resource, dict):
        raise InvalidRequest("$validate needs a resource in the body")
    if rtype is not None and resource.get("resourceType") != rtype:
        outcome = FhirError(f"resourceType must be {rtype}", expression=["resourceType"]).outcome()
        return FhirResponse(200, outcome)
    if mode == "update" and fid is not None and resource.get("id") != fid:
        return FhirResponse(200, FhirError("id does not match the URL", expression=[f"{rtype}.id"]).outcome())
    try:
        it.services.validator.check(resource, expected_type=rtype)
    except FhirError as exc:
        return FhirResponse(200, exc.outcome())
    return FhirResponse(200, OK)


register(Operation("$validate", "http://hl7.org/fhir/OperationDefinition/Resource-validate", system=False,
                   type_level=True, instance=True, types=None, affects_state=False, handler=validate, public=True))
