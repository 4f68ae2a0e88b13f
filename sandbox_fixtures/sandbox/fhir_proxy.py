"""The vendor-flavoured FHIR endpoint: the hub's data, served with one vendor's quirks, for adapter tests.

A request to ``/sandbox/<flavour>/<fhir prefix>/…`` goes through the flavour's checks (tenant, Accept,
throttle, practice, paging session, required parameters), then to the hub in-process with the caller's
own bearer token, and the hub's answer comes back rewritten to the flavour (base URLs, paging links,
``Bundle.total``, outcome entries, error shapes, XML). The work is :meth:`FlavouredFhir.handle`, a
function of the flavour and a :class:`ProxyRequest`; the Flask view in :mod:`.app` only adapts.
"""
from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import orjson

from sandbox_fixtures.sandbox import vendor_errors as errors
from sandbox_fixtures.sandbox.flavours import Flavour
from sandbox_fixtures.sandbox.hub import Hub, HubReply
from sandbox_fixtures.sandbox.paging import HUB_PAGING, PageSessions, SessionExpired, vendor_next_link
from sandbox_fixtures.sandbox.ratelimit import Throttle
from sandbox_fixtures.sandbox.vendor_errors import Reply
from sandbox_fixtures.sandbox.xmlish import to_xml

PASSED_RESPONSE_HEADERS = ("ETag", "Last-Modified", "Location", "Content-Location")
PRACTICE_PARAM = "ah-practice"  # vendor-notes §4.2
EPIC_401 = 'Bearer error="invalid_token", error_description="The access token provided is not valid"'  # §2.3


@dataclass(frozen=True)
class ProxyRequest:
    """A request below a flavoured base: ``path`` like ``Observation`` or ``Patient/123``."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    remote_addr: str = "127.0.0.1"


def _param_names(query: list[tuple[str, str]]) -> set[str]:
    return {k.split(":", 1)[0].split(".", 1)[0] for k, _ in query}


def missing_combination(flavour: Flavour, rtype: str, query: list[tuple[str, str]]) -> list[list[str]] | None:
    """The required alternatives when none is satisfied, else None."""
    alternatives = flavour.required.get(rtype)
    if not alternatives:
        return None
    names = _param_names(query)
    return None if any(all(p in names for p in alt) for alt in alternatives) else alternatives


def wants_json(req: ProxyRequest) -> bool:
    fmt = dict(req.query).get("_format", "")
    accept = req.headers.get("accept", "")
    return "json" in fmt or "json" in accept


class FlavouredFhir:
    """All flavours' FHIR endpoints over one hub."""

    def __init__(self, hub: Hub, flavours: dict[str, Flavour], sessions: PageSessions | None = None,
                 throttles: dict[str, Throttle] | None = None) -> None:
        self.hub = hub
        self.flavours = flavours
        self.sessions = sessions or PageSessions()
        self.throttles = throttles or {name: Throttle(f.rate_limit) for name, f in flavours.items()}
        self.resource_types: frozenset[str] = hub.app.extensions["telehub.fhir"].registry.resource_types
        self._hub_base = re.compile(re.escape(hub.fhir_base.encode()) + rb"(?=[/\"?])")

    def public_base(self, flavour: Flavour) -> str:
        """The flavoured FHIR base as clients see it (the ``iss`` of a flavoured launch)."""
        return f"{self.hub.origin}/sandbox{flavour.base_path}"

    def rewrite(self, flavour: Flavour, body: bytes) -> bytes:
        """Every hub base URL in a body → the flavoured base."""
        return self._hub_base.sub(self.public_base(flavour).encode(), body)

    # ------------------------------------------------------------------ the pipeline
    def handle(self, flavour: Flavour, req: ProxyRequest) -> Reply:
        if flavour.latency_ms:
            time.sleep(flavour.latency_ms / 1000)
        segments = [s for s in req.path.split("/") if s]
        rtype = segments[0] if segments else ""
        as_xml = False
        if not wants_json(req):
            if flavour.non_json == "406-empty" and req.headers.get("accept", "*/*") not in ("", "*/*"):
                return errors.not_acceptable()
            as_xml = flavour.non_json == "xml"
        reply = self._checks(flavour, req, rtype)
        if reply is None:
            reply = self._forward(flavour, req, segments, rtype)
        if as_xml and reply.content_type.startswith("application/fhir+json") and reply.body:
            reply = Reply(reply.status, to_xml(orjson.loads(reply.body)), "application/fhir+xml; charset=utf-8",
                          reply.headers)
        return reply

    def _checks(self, flavour: Flavour, req: ProxyRequest, rtype: str) -> Reply | None:
        if rtype == "metadata":
            return None
        wait = self.throttles[flavour.name].check()
        if wait:
            return errors.too_many(flavour, wait)
        if flavour.practice_ref:
            given = dict(req.query).get(PRACTICE_PARAM)
            if not given:
                return errors.missing_practice()
            if given != flavour.practice_ref:
                return errors.outcome(flavour, 403, "forbidden", "The practice is not available to this client")
        if rtype and not rtype.startswith(("$", "_")) and rtype not in self.resource_types:
            return errors.unknown_type(flavour)
        return None

    def _is_search(self, req: ProxyRequest, segments: list[str]) -> bool:
        return req.method == "GET" and len(segments) == 1 and segments[0] in self.resource_types

    def _forward(self, flavour: Flavour, req: ProxyRequest, segments: list[str], rtype: str) -> Reply:
        paging = flavour.paging
        vendor_only = {PRACTICE_PARAM, *paging.extra} | ({paging.param} if paging.style == "session" else set())
        query = [(k, v) for k, v in req.query if k not in vendor_only and k != "_format"]
        search = self._is_search(req, segments)
        token = dict(req.query).get(paging.param) if paging.style == "session" else None
        if search and token:
            try:
                hub_query = self.sessions.get(token, rtype).hub_query
            except SessionExpired:
                return errors.session_expired(flavour)
        else:
            if search:
                missing = missing_combination(flavour, rtype, query)
                if missing:
                    return errors.missing_params(flavour, rtype, missing)
            hub_query = urlencode(query)
        headers = {"Accept": "application/fhir+json"}
        for name in ("authorization", "content-type", "if-match", "if-none-exist", "prefer"):
            if name in req.headers:
                headers[name.title()] = req.headers[name]
        if flavour.lenient and search:
            headers["Prefer"] = "handling=lenient"
        hub = self.hub.call(req.method, "/".join(segments), query=hub_query, headers=headers,
                            data=req.body or None, remote_addr=req.remote_addr)
        return self._respond(flavour, req, rtype, search, hub, paged=bool(token))

    # ------------------------------------------------------------------ the answer
    def _respond(self, flavour: Flavour, req: ProxyRequest, rtype: str, search: bool, hub: HubReply,
                 paged: bool = False) -> Reply:
        shape = flavour.errors["shape"]
        if hub.status == 401 and shape == "epic":
            return Reply(401, b"", "text/plain", {"WWW-Authenticate": EPIC_401})
        headers = {k: self.rewrite(flavour, hub.headers[k].encode()).decode()
                   for k in PASSED_RESPONSE_HEADERS if k in hub.headers}
        if "WWW-Authenticate" in hub.headers:
            headers["WWW-Authenticate"] = hub.headers["WWW-Authenticate"]
        ctype = hub.headers.get("Content-Type", errors.FHIR_JSON)
        if "json" not in ctype or not hub.body:
            return Reply(hub.status, hub.body, ctype, headers)
        body: dict[str, Any] = orjson.loads(self.rewrite(flavour, hub.body))
        if hub.status >= 400 and body.get("resourceType") == "OperationOutcome" and shape != "hub":
            return self._vendor_error(flavour, hub.status, body, headers)
        if flavour.empty_create and req.method == "POST" and hub.status == 201 and "/" not in req.path.strip("/"):
            return Reply(201, b"", "text/plain", headers)  # read it back via Location
        if search and body.get("resourceType") == "Bundle":
            body = self._searchset(flavour, req, rtype, body, paged)
        return Reply(hub.status, orjson.dumps(body), errors.FHIR_JSON, headers)

    def _vendor_error(self, flavour: Flavour, status: int, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        issue = (body.get("issue") or [{}])[0]
        text = issue.get("diagnostics") or (issue.get("details") or {}).get("text") or "Error"
        vendor_code = "59008" if status == 404 else None  # §2.3 Epic: read of a missing id → 59008
        if status == 404 and flavour.errors["shape"] == "cerner":
            text = "Not Found"  # §3.3 live Cerner errors are this minimal
        reply = errors.outcome(flavour, status, str(issue.get("code", "processing")), str(text), vendor_code)
        return Reply(reply.status, reply.body, reply.content_type, headers)

    def _searchset(self, flavour: Flavour, req: ProxyRequest, rtype: str, bundle: dict[str, Any],
                   paged: bool) -> dict[str, Any]:
        """Links, ``total`` and outcome entries the flavour's way (``paged``: a page reached by a session token)."""
        paging = flavour.paging
        base = self.public_base(flavour)
        links = bundle.get("link") or []
        if paging.style == "session":
            kept = [link for link in links if link.get("relation") == "self"]
            hub_next = next((link["url"] for link in links if link.get("relation") == "next"), None)
            if hub_next:
                kept.append({"relation": "next", "url": vendor_next_link(
                    paging, self.sessions, base, rtype, hub_next,
                    [(k, v) for k, v in req.query if k not in HUB_PAGING])})
            bundle["link"] = kept
        entries = bundle.get("entry") or []
        matches = [e for e in entries if (e.get("search") or {}).get("mode") == "match"]
        if paging.total == "omit":
            bundle.pop("total", None)
        elif paging.total == "page-size" and (paged or any(k == "_count" for k, _ in req.query)):
            bundle["total"] = len(matches)  # §2.3 Epic: total = the page size when _count is set
        when = flavour.outcome.get("when", "never")
        if when == "always" or (when == "empty" and not matches):
            entries.append(self._outcome_entry(flavour))
            bundle["entry"] = entries
        return bundle

    @staticmethod
    def _outcome_entry(flavour: Flavour) -> dict[str, Any]:
        o = flavour.outcome
        issue: dict[str, Any] = {"severity": o.get("severity", "warning"), "code": o.get("code", "informational"),
                                 "details": {"text": o.get("text", "")}}
        if o.get("vendor_code"):
            issue["details"]["coding"] = [{"system": flavour.errors.get("code_system", ""),
                                           "code": o["vendor_code"], "display": o.get("text", "")}]
        return {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": {"resourceType": "OperationOutcome",
                                                                    "issue": [issue]},
                "search": {"mode": "outcome"}}
