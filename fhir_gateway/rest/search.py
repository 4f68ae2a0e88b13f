"""search (GET and POST ``_search``): https://hl7.org/fhir/R4/http.html#search.

Thin handler: parse the parameters, run the search, build the searchset Bundle
with self/next/previous links, ``search.mode`` match/include/outcome, and the
``_summary``/``_elements`` shaping.
"""
from __future__ import annotations

from typing import Any

from fhir_gateway.rest.bundles import bundle, page_url
from fhir_gateway.rest.context import Interaction
from fhir_gateway.rest.headers import lenient
from fhir_gateway.rest.messages import FhirRequest, FhirResponse
from fhir_gateway.search.query_model import SearchRequest
from fhir_gateway.storage.searching import SearchResult
from fhir_gateway.storage.tables import resource

PAGING_PARAMS = ("_count", "_offset", "_snapshot")
IGNORED_IN_LINKS = ("_format", "_pretty", *PAGING_PARAMS)


def _shape(resource: dict[str, Any], request: SearchRequest) -> dict[str, Any]:
    if request.summary in (None, "false") and not request.elements:
        return resource
    from fhir_gateway.rest.elements import apply_elements, apply_summary

    if request.summary in ("true", "text", "data"):
        return apply_summary(resource, request.summary)
    if request.elements:
        return apply_elements(resource, list(request.elements))
    return resource


def _links(it: Interaction, path: str, req: FhirRequest, result: SearchResult) -> list[dict[str, str]]:
    base = it.base()
    kept = [(k, v) for k, v in req.params if k not in IGNORED_IN_LINKS]

    def url(offset: int) -> str:
        return page_url(base, path, [*kept, ("_count", str(result.count)), ("_offset", str(offset)),
                                     ("_snapshot", str(result.snapshot))])

    links = [{"relation": "self", "url": url(result.offset)}]
    if result.has_more:
        links.append({"relation": "next", "url": url(result.offset + result.count)})
    if result.offset > 0:
        links.append({"relation": "previous", "url": url(max(0, result.offset - result.count))})
    return links


def search_type(it: Interaction, req: FhirRequest, rtype: str) -> FhirResponse:
    service = it.services.search
    request = service.parse(rtype, req.params, lenient=lenient(req))
    result = service.execute(it.conn, request, it.scope(resource), inner_scope=it.scope)
    base = it.base()
    entries: list[dict[str, Any]] = []
    for stored in result.matches:
        if stored.resource is not None and it.visible(stored.resource):
            entries.append({"fullUrl": f"{base}/{stored.rtype}/{stored.fid}",
                            "resource": _shape(it.shape(stored.resource), request), "search": {"mode": "match"}})
    for stored in result.included:  # an included resource is read, not searched: its type's read scopes apply
        if stored.resource is not None and it.visible(stored.resource, "read"):
            entries.append({"fullUrl": f"{base}/{stored.rtype}/{stored.fid}", "resource": it.shape(stored.resource),
                            "search": {"mode": "include"}})
    if request.ignored:
        entries.append({"resource": {"resourceType": "OperationOutcome", "issue": [
            {"severity": "warning", "code": "not-supported",
             "diagnostics": f"parameter '{name}' was ignored (Prefer: handling=lenient)"} for name in request.ignored
        ]}, "search": {"mode": "outcome"}})
    body = bundle("searchset", entries, total=result.total, links=_links(it, rtype, req, result))
    return FhirResponse(200, body)
