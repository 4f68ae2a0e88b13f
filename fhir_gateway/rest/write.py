"""create, update, delete and their conditional forms: https://hl7.org/fhir/R4/http.html#create.

Each handler validates before touching storage, so a rejected request writes nothing.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fhir_gateway.errors import Forbidden, InvalidRequest, InvalidResource, MultipleMatches
from fhir_gateway.rest.context import Interaction
from fhir_gateway.rest.headers import if_match_version, written
from fhir_gateway.rest.messages import FhirRequest, FhirResponse
from fhir_gateway.storage.repository import StoredResource
from fhir_gateway.storage.tables import resource


def resource_body(it: Interaction, req: FhirRequest, rtype: str) -> dict[str, Any]:
    """The request body as a resource of ``rtype``, structurally validated."""
    body = req.body
    if body is None:
        raise InvalidRequest("request body is empty; a resource was expected")
    if not isinstance(body, dict):
        raise InvalidResource("request body must be a JSON object (a FHIR resource)", code="structure")
    if body.get("resourceType") != rtype:
        raise InvalidRequest(f"resourceType in the body must be '{rtype}'", expression=["resourceType"])
    it.services.validator.check(body, expected_type=rtype)
    if not it.visible(body):
        raise Forbidden(f"writing this {rtype} is not permitted to this requester")
    return body


def _keep_hidden(it: Interaction, body: dict[str, Any], rtype: str, fid: str) -> dict[str, Any]:
    """A requester who sees only some fields must not erase the others by updating."""
    current = it.services.repository.read(it.conn, rtype, fid)
    if current is None or current.resource is None:
        return body
    return it.services.access.restore_hidden(it.ctx, body, current.resource)


def conditional_matches(it: Interaction, rtype: str, query: list[tuple[str, str]]) -> list[StoredResource]:
    if not query:
        raise InvalidRequest("a conditional interaction needs search parameters")
    return it.services.search.find(it.conn, rtype, query, limit=2, scope=it.scope(resource),
                                   inner_scope=it.scope)


def create(it: Interaction, req: FhirRequest, rtype: str) -> FhirResponse:
    body = resource_body(it, req, rtype)
    if_none_exist = req.header("if-none-exist")
    if if_none_exist:
        query = parse_qsl(if_none_exist.split("?", 1)[-1], keep_blank_values=True)
        matches = conditional_matches(it, rtype, query)
        if len(matches) > 1:
            raise MultipleMatches("If-None-Exist matched more than one resource")
        if matches:
            return written(req, it.base(), matches[0], 200, "resource already exists; nothing created")
    stored = it.services.repository.create(it.conn, body)
    return written(req, it.base(), stored, 201, f"created {stored.rtype}/{stored.fid}")


def update(it: Interaction, req: FhirRequest, rtype: str, fid: str) -> FhirResponse:
    body = resource_body(it, req, rtype)
    if "id" not in body:
        raise InvalidRequest("the resource in an update must carry its id", expression=[f"{rtype}.id"])
    if body["id"] != fid:
        raise InvalidRequest("the id in the body does not match the id in the URL", expression=[f"{rtype}.id"])
    body = _keep_hidden(it, body, rtype, fid)
    stored, created = it.services.repository.update(it.conn, body, fid, if_match=if_match_version(req),
                                                    skip_unchanged=True)
    return written(req, it.base(), stored, 201 if created else 200,
                   f"{'created' if created else 'updated'} {rtype}/{fid}")


def conditional_update(it: Interaction, req: FhirRequest, rtype: str) -> FhirResponse:
    body = resource_body(it, req, rtype)
    matches = conditional_matches(it, rtype, req.params)
    if len(matches) > 1:
        raise MultipleMatches("the conditional update matched more than one resource")
    if not matches:
        if "id" in body:
            stored, created = it.services.repository.update(it.conn, body, body["id"])
        else:
            stored, created = it.services.repository.create(it.conn, body), True
        return written(req, it.base(), stored, 201 if created else 200, f"created {rtype}/{stored.fid}")
    target = matches[0]
    if "id" in body and body["id"] != target.fid:
        raise InvalidRequest("the id in the body does not match the resource found", expression=[f"{rtype}.id"])
    body = _keep_hidden(it, body, rtype, target.fid)
    stored, _ = it.services.repository.update(it.conn, body, target.fid, if_match=if_match_version(req))
    return written(req, it.base(), stored, 200, f"updated {rtype}/{stored.fid}")


def delete(it: Interaction, req: FhirRequest, rtype: str, fid: str) -> FhirResponse:
    stored = it.services.repository.delete(it.conn, rtype, fid, if_match=if_match_version(req))
    headers = {"ETag": stored.etag} if stored else {}
    return FhirResponse(204, None, headers)


def conditional_delete(it: Interaction, req: FhirRequest, rtype: str) -> FhirResponse:
    matches = conditional_matches(it, rtype, req.params)
    if len(matches) > 1:
        raise MultipleMatches("the conditional delete matched more than one resource")
    for match in matches:
        it.services.repository.delete(it.conn, rtype, match.fid)
    return FhirResponse(204)
