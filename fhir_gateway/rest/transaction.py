"""batch and transaction Bundles: https://hl7.org/fhir/R4/http.html#transaction.

A transaction runs on the caller's single database transaction: every entry
succeeds or the whole Bundle is rolled back and the client gets one
OperationOutcome naming the failing entry. Before processing, server ids are
assigned to POST entries, and ``urn:uuid:`` fullUrls and conditional
references (``Patient?identifier=…``) are rewritten everywhere in the Bundle; conditional
PATCH entries (``PATCH Patient?identifier=…``) are resolved to their one match first.
Entries then run in FHIR's order: DELETE, POST, PUT/PATCH, GET/HEAD.
A batch runs each entry in its own savepoint; failures become entry outcomes.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from fhir_gateway.errors import FhirError, InvalidRequest, MultipleMatches, NotFound, PreconditionFailed
from fhir_gateway.rest.bundles import bundle
from fhir_gateway.rest.context import Interaction
from fhir_gateway.rest.headers import location, return_mode
from fhir_gateway.rest.messages import FhirRequest, FhirResponse
from fhir_gateway.rest.write import resource_body
from fhir_gateway.storage.references import missing_references
from fhir_gateway.storage.repository import new_id
from fhir_gateway.storage.tables import resource as resource_table

ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
STATUS_TEXT = {200: "200 OK", 201: "201 Created", 204: "204 No Content", 304: "304 Not Modified"}


@dataclass
class Entry:
    index: int
    method: str
    url: str
    path: str
    params: list[tuple[str, str]]
    full_url: str | None
    resource: Any
    headers: dict[str, str] = field(default_factory=dict)
    assigned: str | None = None  # "Type/id" decided before processing
    existing: bool = False  # conditional create matched an existing resource
    response: dict[str, Any] | None = None
    result: Any = None


def _fail(entry: Entry | None, exc: FhirError) -> FhirError:
    where = f"Bundle.entry[{entry.index}]" if entry is not None else "Bundle"
    exc.diagnostics = f"{where}: {exc.diagnostics}"
    exc.expression = [where, *exc.expression]
    exc.args = (exc.diagnostics,)
    return exc


def _parse_entries(body: Any, base: str) -> tuple[str, list[Entry]]:
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise InvalidRequest("POST to the base needs a Bundle", expression=["Bundle"])
    kind = body.get("type")
    if kind not in ("batch", "transaction"):
        raise InvalidRequest("Bundle.type must be batch or transaction", expression=["Bundle.type"])
    raw_entries = body.get("entry", [])
    if not isinstance(raw_entries, list):
        raise InvalidRequest("Bundle.entry must be an array", expression=["Bundle.entry"])
    entries = []
    for i, raw in enumerate(raw_entries):
        if not isinstance(raw, dict) or not isinstance(raw.get("request"), dict):
            raise InvalidRequest(f"Bundle.entry[{i}] needs a request", expression=[f"Bundle.entry[{i}].request"])
        request = raw["request"]
        method = str(request.get("method", "")).upper()
        url = request.get("url")
        if method not in ORDER or not isinstance(url, str) or not url:
            raise InvalidRequest(f"Bundle.entry[{i}].request needs a method and url",
                                 expression=[f"Bundle.entry[{i}].request"])
        if url.startswith(base + "/"):
            url = url[len(base) + 1:]
        parts = urlsplit(url)
        headers = {h.lower(): str(request[k]) for k, h in (
            ("ifMatch", "if-match"), ("ifNoneExist", "if-none-exist"), ("ifNoneMatch", "if-none-match"),
            ("ifModifiedSince", "if-modified-since")) if request.get(k)}
        entries.append(Entry(i, method, url, parts.path.strip("/"),
                             parse_qsl(parts.query, keep_blank_values=True), raw.get("fullUrl"),
                             raw.get("resource"), headers))
    return kind, entries


def process_bundle(it: Interaction, req: FhirRequest, *, keep_uuid_ids: bool = False) -> FhirResponse:
    """Process a batch or transaction. ``keep_uuid_ids`` (the importer's choice) makes a POST entry
    whose fullUrl is ``urn:uuid:X`` create the resource with id X, so a re-import finds it again."""
    kind, entries = _parse_entries(req.body, it.base())
    if kind == "transaction":
        return _transaction(it, req, entries, keep_uuid_ids)
    return _batch(it, req, entries)


# -- transaction ----------------------------------------------------------------------------------
def _transaction(it: Interaction, req: FhirRequest, entries: list[Entry], keep_uuid_ids: bool) -> FhirResponse:
    mapping: dict[str, str] = {}
    for entry in entries:
        try:
            _assign(it, entry, mapping, keep_uuid_ids)
        except FhirError as exc:
            raise _fail(entry, exc) from None
    _check_unique_targets(entries)
    for entry in entries:
        try:
            if entry.method == "PATCH":  # the patch's values may reference other entries' fullUrls
                entry.resource = _patch_body(entry.resource)
            entry.resource = _rewrite(it, entry.resource, mapping)
        except FhirError as exc:
            raise _fail(entry, exc) from None
    prefer_headers = {"prefer": req.header("prefer") or ""}
    ordered = sorted(entries, key=lambda e: (ORDER[e.method], e.index))
    start = 0
    while start < len(ordered):
        end = start
        while end < len(ordered) and _bulkable(ordered[end]) and ordered[end].method == ordered[start].method:
            end += 1
        if end > start:
            _run_bulk(it, ordered[start:end], return_mode(req))
            start = end
            continue
        entry = ordered[start]
        try:
            entry.response, entry.result = _run(it, entry, prefer_headers)
        except FhirError as exc:
            raise _fail(entry, exc) from None
        start += 1
    _check_references(it, entries)
    out = [_entry_out(e) for e in entries]
    return FhirResponse(200, bundle("transaction-response", out))


def _literal_references(value: Any, found: set[tuple[str, str]], types: frozenset[str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "reference" and isinstance(v, str):
                parts = v.split("/")
                if len(parts) in (2, 4) and parts[0] in types and (len(parts) == 2 or parts[2] == "_history"):
                    found.add((parts[0], parts[1]))
            elif k != "contained":
                _literal_references(v, found, types)
    elif isinstance(value, list):
        for v in value:
            _literal_references(v, found, types)


def _check_references(it: Interaction, entries: list[Entry]) -> None:
    """Every relative reference in what the transaction wrote must resolve (R4 http.html#trules)."""
    types = it.services.resource_types
    per_entry: list[tuple[Entry, set[tuple[str, str]]]] = []
    for entry in entries:
        if entry.method in ("POST", "PUT") and isinstance(entry.resource, dict) and not entry.existing:
            refs: set[tuple[str, str]] = set()
            _literal_references(entry.resource, refs, types)
            per_entry.append((entry, refs))
    missing = missing_references(it.conn, {r for _, refs in per_entry for r in refs})
    for entry, refs in per_entry:
        bad = refs & missing
        if bad:
            kinds = ", ".join(sorted({t for t, _ in bad}))
            raise _fail(entry, NotFound(f"the resource references {len(bad)} {kinds} resource(s) that do not "
                                        "exist", code="not-found"))


def _scoped(it: Interaction) -> dict[str, Any]:
    """Conditional matches see only what the requester may see (no probing through ifNoneExist or references)."""
    return {"scope": it.scope(resource_table), "inner_scope": it.scope}


def _assign(it: Interaction, entry: Entry, mapping: dict[str, str], keep_uuid_ids: bool = False) -> None:
    """Decide the id each POST/PUT entry will get, and map its fullUrl to it."""
    segments = entry.path.split("/") if entry.path else []
    if entry.method == "POST" and len(segments) == 1:
        rtype = it.require_type(segments[0])
        if entry.headers.get("if-none-exist"):
            query = parse_qsl(entry.headers["if-none-exist"].split("?", 1)[-1], keep_blank_values=True)
            matches = it.services.search.find(it.conn, rtype, query, limit=2, **_scoped(it))
            if len(matches) > 1:
                raise MultipleMatches("ifNoneExist matched more than one resource")
            if matches:
                entry.assigned, entry.existing = f"{rtype}/{matches[0].fid}", True
        if entry.assigned is None:
            uuid_id = entry.full_url[9:] if entry.full_url and entry.full_url.startswith("urn:uuid:") else None
            entry.assigned = f"{rtype}/{uuid_id if keep_uuid_ids and uuid_id else new_id()}"
    elif entry.method == "PUT" and len(segments) == 1 and entry.params:
        rtype = it.require_type(segments[0])
        matches = it.services.search.find(it.conn, rtype, entry.params, limit=2, **_scoped(it))
        if len(matches) > 1:
            raise MultipleMatches("conditional update matched more than one resource")
        if matches:
            fid = matches[0].fid
        elif isinstance(entry.resource, dict) and isinstance(entry.resource.get("id"), str):
            fid = entry.resource["id"]
        else:
            fid = new_id()
        entry.assigned = f"{rtype}/{fid}"
        entry.path, entry.params = entry.assigned, []
        if isinstance(entry.resource, dict) and "id" not in entry.resource:  # a body may omit the id
            entry.resource = {**entry.resource, "id": fid}
    elif entry.method == "PATCH" and len(segments) == 1 and entry.params:
        entry.assigned = _conditional_patch_target(it, it.require_type(segments[0]), entry.params)
        entry.path, entry.params = entry.assigned, []
    elif entry.method in ("PUT", "PATCH", "DELETE") and len(segments) == 2:
        entry.assigned = f"{it.require_type(segments[0])}/{segments[1]}"
    if entry.full_url and entry.assigned:
        mapping[entry.full_url] = entry.assigned


def _conditional_patch_target(it: Interaction, rtype: str, params: list[tuple[str, str]]) -> str:
    """``PATCH Type?query`` (R4 http.html#patch): resolved before processing, like a conditional update,
    so its fullUrl can be referenced by other entries (an A40 merge links survivor and retired patient).
    No match is 404, several are 412; the patch then runs against the one match by id."""
    matches = it.services.search.find(it.conn, rtype, params, limit=2, **_scoped(it))
    if len(matches) > 1:
        raise MultipleMatches("the conditional patch matched more than one resource")
    if not matches:
        raise NotFound("the conditional patch matched no resource", code="not-found")
    return f"{rtype}/{matches[0].fid}"


def _check_unique_targets(entries: list[Entry]) -> None:
    seen: dict[str, int] = {}
    for entry in entries:
        if entry.assigned and entry.method != "GET" and not entry.existing:
            if entry.assigned in seen:
                raise _fail(entry, InvalidRequest(
                    f"entries {seen[entry.assigned]} and {entry.index} both change the same resource"))
            seen[entry.assigned] = entry.index


def _rewrite(it: Interaction, value: Any, mapping: dict[str, str]) -> Any:
    """Replace fullUrl references by assigned ids and resolve conditional references."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "reference" and isinstance(v, str):
                out[k] = _resolve_reference(it, v, mapping)
            else:
                out[k] = _rewrite(it, v, mapping)
        return out
    if isinstance(value, list):
        return [_rewrite(it, v, mapping) for v in value]
    if isinstance(value, str) and value in mapping:
        return mapping[value]
    return value


def _resolve_reference(it: Interaction, ref: str, mapping: dict[str, str]) -> str:
    if ref in mapping:
        return mapping[ref]
    if "?" in ref and not ref.startswith(("http://", "https://", "#", "urn:")):
        rtype, query = ref.split("?", 1)
        it.require_type(rtype)
        matches = it.services.search.find(it.conn, rtype, parse_qsl(query, keep_blank_values=True), limit=2,
                                          **_scoped(it))
        if len(matches) != 1:
            raise PreconditionFailed(
                f"conditional reference to {rtype} matched {'no' if not matches else 'more than one'} resource")
        resolved = f"{rtype}/{matches[0].fid}"
        mapping[ref] = resolved
        return resolved
    if ref.startswith("urn:uuid:") or ref.startswith("urn:oid:"):
        raise InvalidRequest("reference to a urn that no entry in the Bundle has as fullUrl", code="not-found",
                             status=404)
    return ref


def _bulkable(entry: Entry) -> bool:
    """Plain creates and plain updates can share one bulk write; conditional or versioned ones cannot."""
    if entry.method == "POST":
        return bool(entry.assigned) and not entry.existing and "/" not in entry.path
    return (entry.method == "PUT" and entry.path.count("/") == 1 and not entry.params
            and "if-match" not in entry.headers)


def _run_bulk(it: Interaction, group: list[Entry], mode: str) -> None:
    """Validate a run of plain POST or PUT entries, then write them in one bulk upsert."""
    bodies = []
    for entry in group:
        try:
            rtype, fid = (entry.assigned or entry.path).split("/", 1)
            it.require_type(rtype)
            it.services.access.check(it.ctx, "create" if entry.method == "POST" else "update", rtype)
            body = resource_body(it, FhirRequest(entry.method, entry.path, body=entry.resource), rtype)
            if entry.method == "PUT" and body.get("id") != fid:
                raise InvalidRequest("the resource id must match the id in request.url", expression=[f"{rtype}.id"])
        except FhirError as exc:
            raise _fail(entry, exc) from None
        bodies.append({**body, "id": fid})
    method = group[0].method
    results = it.services.repository.upsert_many(it.conn, bodies, skip_unchanged=method == "PUT", method=method)
    for entry, (stored, created) in zip(group, results, strict=True):
        entry.response = _response(201 if created else 200, stored, it.base())
        entry.result = None if mode == "minimal" else stored.resource


def _patch_body(resource: Any) -> Any:
    """A PATCH entry carries its JSON Patch as a Binary (base64) resource."""
    if isinstance(resource, dict) and resource.get("resourceType") == "Binary":
        try:
            return orjson.loads(base64.b64decode(resource.get("data", ""), validate=True))
        except (binascii.Error, orjson.JSONDecodeError, ValueError):
            raise InvalidRequest("the PATCH entry's Binary does not hold a JSON Patch document") from None
    return resource


def _run(it: Interaction, entry: Entry, extra_headers: dict[str, str]) -> tuple[dict[str, Any], Any]:
    from fhir_gateway.rest.routes import dispatch

    repo = it.services.repository
    if entry.method == "POST" and entry.assigned and "/" in entry.assigned and entry.path.count("/") == 0:
        rtype, fid = entry.assigned.split("/", 1)
        it.services.access.check(it.ctx, "create", rtype)
        if entry.existing:
            stored = it.current(rtype, fid)
            return _response(200, stored), stored.resource
        body = resource_body(it, FhirRequest("POST", entry.path, body=entry.resource), rtype)
        stored = repo.create(it.conn, body, fid)
        return _response(201, stored, it.base()), stored.resource
    body = _patch_body(entry.resource) if entry.method == "PATCH" else entry.resource
    ctype = "application/json-patch+json" if entry.method == "PATCH" else "application/fhir+json"
    sub = FhirRequest(entry.method, entry.path, entry.params, {**extra_headers, **entry.headers}, body, ctype)
    response = dispatch(it, sub)
    out: dict[str, Any] = {"status": STATUS_TEXT.get(response.status, str(response.status))}
    for header, key in (("Location", "location"), ("ETag", "etag")):
        if header in response.headers:
            out[key] = response.headers[header]
    if "Last-Modified" in response.headers and response.body and isinstance(response.body.get("meta"), dict):
        out["lastModified"] = response.body["meta"].get("lastUpdated")
    return out, response.body


def _response(status: int, stored: Any, base: str | None = None) -> dict[str, Any]:
    out = {"status": STATUS_TEXT[status], "etag": stored.etag, "lastModified": stored.last_updated_instant}
    out["location"] = location(base, stored) if base else f"{stored.rtype}/{stored.fid}/_history/{stored.version}"
    return out


def _entry_out(entry: Entry) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if entry.assigned and entry.method in ("POST", "PUT"):
        out["fullUrl"] = entry.assigned
    if isinstance(entry.result, dict) and entry.method != "DELETE":
        out["resource"] = entry.result
    out["response"] = entry.response
    return out


# -- batch ----------------------------------------------------------------------------------------
def _batch(it: Interaction, req: FhirRequest, entries: list[Entry]) -> FhirResponse:
    from fhir_gateway.rest.routes import dispatch

    prefer_headers = {"prefer": req.header("prefer") or ""}
    out = []
    for entry in entries:
        body = _patch_body(entry.resource) if entry.method == "PATCH" else entry.resource
        ctype = "application/json-patch+json" if entry.method == "PATCH" else "application/fhir+json"
        sub = FhirRequest(entry.method, entry.path, entry.params, {**prefer_headers, **entry.headers}, body, ctype)
        try:
            with it.conn.begin_nested():
                response = dispatch(it, sub)
        except FhirError as exc:
            out.append({"response": {"status": str(exc.status), "outcome": exc.outcome()}})
            continue
        item: dict[str, Any] = {}
        if response.body is not None and return_mode(sub) != "minimal":
            item["resource"] = response.body
        resp: dict[str, Any] = {"status": STATUS_TEXT.get(response.status, str(response.status))}
        if "Location" in response.headers:
            resp["location"] = response.headers["Location"]
        if "ETag" in response.headers:
            resp["etag"] = response.headers["ETag"]
        item["response"] = resp
        out.append(item)
    return FhirResponse(200, bundle("batch-response", out))
