"""The route table: every FHIR interaction this server answers, in one greppable list.

A route is (HTTP method, path shape, interaction name, handler). The path shape
uses ``{type}``, ``{id}``, ``{vid}`` and ``{op}`` (an operation, ``$name``).
Conditional update/delete/patch are the type-level PUT/DELETE/PATCH with a
query. The interaction name is what the access policy (and audit) sees.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fhir_gateway.errors import InvalidRequest, MethodNotAllowed, NotFound
from fhir_gateway.operations.registry import operations, run_operation
from fhir_gateway.rest import history, patch, read, search, write
from fhir_gateway.rest.context import Interaction
from fhir_gateway.rest.messages import FhirRequest, FhirResponse

Handler = Callable[..., FhirResponse]


@dataclass(frozen=True)
class Route:
    method: str
    shape: tuple[str, ...]
    interaction: str
    handler: Handler
    needs_query: bool | None = None  # True: only with a query; False: only without; None: either

    def match(self, req: FhirRequest, segments: list[str]) -> dict[str, str] | None:
        if req.method != self.method or len(segments) != len(self.shape):
            return None
        if self.needs_query is not None and bool(req.params) != self.needs_query:
            return None
        found: dict[str, str] = {}
        for part, seg in zip(self.shape, segments, strict=True):
            if part.startswith("{"):
                name = part[1:-1]
                if name == "op" and not seg.startswith("$"):
                    return None
                if name != "op" and (seg.startswith("$") or seg.startswith("_") or not seg):
                    return None
                found[name] = seg
            elif part != seg:
                return None
        return found


ROUTES: tuple[Route, ...] = (
    Route("GET", ("metadata",), "capabilities", lambda it, req: run_operation(it, req, "$capabilities")),
    Route("GET", ("_history",), "history-system", lambda it, req: history.history(it, req)),
    Route("POST", (), "batch/transaction", lambda it, req: _bundle(it, req)),
    Route("GET", ("{type}",), "search-type", lambda it, req, type: search.search_type(it, req, type)),
    Route("POST", ("{type}", "_search"), "search-type", lambda it, req, type: search.search_type(it, req, type)),
    Route("GET", ("{type}", "_history"), "history-type", lambda it, req, type: history.history(it, req, type)),
    Route("POST", ("{type}",), "create", lambda it, req, type: write.create(it, req, type)),
    Route("PUT", ("{type}",), "update", lambda it, req, type: write.conditional_update(it, req, type), True),
    Route("DELETE", ("{type}",), "delete", lambda it, req, type: write.conditional_delete(it, req, type), True),
    Route("PATCH", ("{type}",), "patch", lambda it, req, type: patch.conditional_patch(it, req, type), True),
    Route("GET", ("{type}", "{id}"), "read", lambda it, req, type, id: read.read(it, req, type, id)),
    Route("PUT", ("{type}", "{id}"), "update", lambda it, req, type, id: write.update(it, req, type, id)),
    Route("PATCH", ("{type}", "{id}"), "patch", lambda it, req, type, id: patch.patch(it, req, type, id)),
    Route("DELETE", ("{type}", "{id}"), "delete", lambda it, req, type, id: write.delete(it, req, type, id)),
    Route("GET", ("{type}", "{id}", "_history"), "history-instance",
          lambda it, req, type, id: history.history(it, req, type, id)),
    Route("GET", ("{type}", "{id}", "_history", "{vid}"), "vread",
          lambda it, req, type, id, vid: read.vread(it, req, type, id, vid)),
    # operations: system, type and instance level, GET and POST
    *(Route(m, shape, "operation", lambda it, req, op, **kw: run_operation(it, req, op, **kw))
      for m in ("GET", "POST")
      for shape in (("{op}",), ("{type}", "{op}"), ("{type}", "{id}", "{op}"))),
)

ALLOWED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
# The audit trail is append-only: clients may read and search it (auditors), never write it.
READ_ONLY_TYPES = frozenset({"AuditEvent"})


def _bundle(it: Interaction, req: FhirRequest) -> FhirResponse:
    from fhir_gateway.rest.transaction import process_bundle

    return process_bundle(it, req)


def resolve(req: FhirRequest) -> tuple[Route, dict[str, str]]:
    """Find the route for a request, or raise 404/405 with an OperationOutcome."""
    segments = [s for s in req.path.split("/") if s] if req.path else []
    if req.method not in ALLOWED_METHODS:
        raise MethodNotAllowed(f"method {req.method} is not supported")
    method_mismatch = False
    for route in ROUTES:
        found = route.match(req, segments)
        if found is not None:
            return route, found
        probe = FhirRequest(route.method, req.path, req.params)
        if route.match(probe, segments) is not None:
            method_mismatch = True
    if method_mismatch:
        raise MethodNotAllowed(f"{req.method} is not allowed on this path")
    if req.method in ("PUT", "DELETE", "PATCH") and len(segments) == 1:
        raise InvalidRequest(f"{req.method} on a type needs search parameters (conditional {req.method.lower()})")
    raise NotFound("no such endpoint", code="not-supported")


def dispatch(it: Interaction, req: FhirRequest) -> FhirResponse:
    """Route, check access, and run one interaction on an open connection."""
    head = req.method == "HEAD"
    if head:
        req = FhirRequest("GET", req.path, req.params, req.headers, req.body, req.content_type)
    route, found = resolve(req)
    rtype = found.get("type")
    op = found.get("op")
    interaction = route.interaction if op is None else f"operation:{op}"
    it.interaction, it.rtype, it.fid = interaction, rtype, found.get("id")
    if rtype is not None:
        it.require_type(rtype)
    it.services.access.check(it.ctx, interaction, rtype)
    if rtype in READ_ONLY_TYPES:
        if interaction in ("create", "update", "patch", "delete"):
            raise MethodNotAllowed(f"{rtype} is written by the server only; {interaction} is not allowed")
        if it.services.audit is not None:
            it.services.audit.materialize(it.conn, it.services.repository)
    response = route.handler(it, req, **found)
    if head:
        response = FhirResponse(response.status, None, response.headers)
    return response


def is_write(req: FhirRequest) -> bool:
    """Whether a request may write (and so needs a write transaction)."""
    if req.method in ("PUT", "PATCH", "DELETE"):
        return True
    if req.method != "POST":
        return False
    path = req.path.strip("/")
    if path.endswith("_search"):
        return False
    last = path.rsplit("/", 1)[-1] if path else ""
    if last.startswith("$"):
        known = operations()  # loaded: an operation not imported yet would look like a write
        return known.get(last) is None or known[last].affects_state
    return True


def route_table() -> list[dict[str, Any]]:
    """The routes as data (used by the CapabilityStatement and docs)."""
    return [{"method": r.method, "path": "/".join(r.shape), "interaction": r.interaction} for r in ROUTES]
