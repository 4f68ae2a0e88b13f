"""JSON Patch (RFC 6902) on a resource: https://hl7.org/fhir/R4/http.html#patch.

The patched result is validated like an update; a patch may not change the
resource's type or id.
"""
from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from fhir_gateway.errors import Forbidden, InvalidRequest, MultipleMatches, UnsupportedMediaType
from fhir_gateway.rest.context import Interaction
from fhir_gateway.rest.headers import if_match_version, written
from fhir_gateway.rest.messages import FhirRequest, FhirResponse
from fhir_gateway.rest.write import conditional_matches

JSON_PATCH = "application/json-patch+json"


def apply_json_patch(resource: dict[str, Any], operations: Any) -> dict[str, Any]:
    if not isinstance(operations, list):
        raise InvalidRequest("a JSON Patch document must be an array of operations")
    try:
        patched = jsonpatch.JsonPatch(operations).apply(copy.deepcopy(resource))
    except (jsonpatch.JsonPatchConflict, jsonpatch.JsonPatchTestFailed) as exc:
        raise InvalidRequest(f"JSON Patch could not be applied: {type(exc).__name__}", status=422,
                             code="processing") from None
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError) as exc:
        raise InvalidRequest(f"invalid JSON Patch document: {type(exc).__name__}") from None
    if not isinstance(patched, dict):
        raise InvalidRequest("the patch must leave a JSON object", status=422, code="processing")
    return patched


def patch(it: Interaction, req: FhirRequest, rtype: str, fid: str) -> FhirResponse:
    ctype = (req.content_type or "").split(";")[0].strip().lower()
    if ctype not in (JSON_PATCH, "application/json", "application/fhir+json", ""):
        raise UnsupportedMediaType(f"PATCH supports {JSON_PATCH}")
    if ctype != JSON_PATCH and isinstance(req.body, dict):
        raise UnsupportedMediaType(f"FHIRPath Patch is not supported; send {JSON_PATCH}")
    current = it.current(rtype, fid)
    assert current.resource is not None
    if_match = if_match_version(req)
    visible = it.shape(current.resource)
    patched = it.services.access.restore_hidden(it.ctx, apply_json_patch(visible, req.body), current.resource)
    if patched.get("resourceType") != rtype or patched.get("id") != fid:
        raise InvalidRequest("a patch may not change resourceType or id", status=422, code="processing")
    it.services.validator.check(patched, expected_type=rtype)
    if not it.visible(patched):
        raise Forbidden(f"writing this {rtype} is not permitted to this requester")
    stored, _ = it.services.repository.update(it.conn, patched, fid, if_match=if_match or current.version,
                                              method="PATCH")
    return written(req, it.base(), stored, 200, f"patched {rtype}/{fid}")


def conditional_patch(it: Interaction, req: FhirRequest, rtype: str) -> FhirResponse:
    matches = conditional_matches(it, rtype, req.params)
    if len(matches) > 1:
        raise MultipleMatches("the conditional patch matched more than one resource")
    if not matches:
        raise InvalidRequest("the conditional patch matched no resource", status=404, code="not-found")
    return patch(it, req, rtype, matches[0].fid)
