"""The Flask blueprint: HTTP in, :class:`FhirRequest` through the route table, HTTP out.

HTTP concerns only: body size limit (413), media types (415/406), JSON parsing
(400), transactions around each request, and rendering every error as an
OperationOutcome.
"""
from __future__ import annotations

import logging
import uuid
from typing import Any
from urllib.parse import parse_qsl

import orjson
from flask import Blueprint, Flask, Response, current_app, request

from fhir_gateway.access import RequestContext
from fhir_gateway.audit.recorder import audit_input, record
from fhir_gateway.errors import FhirError, InvalidRequest, NotAcceptable, PayloadTooLarge, UnsupportedMediaType
from fhir_gateway.rest.bearer import TokenRequired, context_from_token, is_public
from fhir_gateway.rest.context import FhirServices, Interaction
from fhir_gateway.rest.messages import FhirRequest, FhirResponse
from fhir_gateway.rest.outcomes import error_response, internal_error
from fhir_gateway.rest.routes import dispatch, is_write
from fhir_gateway.storage.engine import read_transaction

FHIR_JSON = "application/fhir+json"
FHIR_JSON_UTF8 = f"{FHIR_JSON}; charset=utf-8"
JSON_TYPES = ("application/fhir+json", "application/json", "application/json-patch+json", "text/json")
FORM = "application/x-www-form-urlencoded"
XML_TYPES = ("application/fhir+xml", "application/xml", "text/xml", "xml")
log = logging.getLogger("telehub.fhir")
PASSED_HEADERS = ("if-match", "if-none-exist", "if-none-match", "if-modified-since", "prefer")


def services() -> FhirServices:
    svc: FhirServices = current_app.extensions["telehub.fhir"]
    return svc


def _check_accept(params: list[tuple[str, str]]) -> None:
    fmt = dict(params).get("_format")
    if fmt and (fmt in XML_TYPES or "xml" in fmt):
        raise NotAcceptable("only JSON is supported (_format)", expression=["_format"])
    accept = request.headers.get("Accept", "")
    if accept and not any(t in accept for t in ("json", "*/*", "application/*")) \
            and any(t in accept for t in XML_TYPES):
        raise NotAcceptable("only application/fhir+json is supported")


def _read_body(limit: int) -> bytes:
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"request body larger than {limit} bytes")
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"request body larger than {limit} bytes")
    return data


def build_request(path: str, svc: FhirServices) -> FhirRequest:
    params = parse_qsl(request.query_string.decode("utf-8", "replace"), keep_blank_values=True)
    _check_accept(params)
    headers = {h: request.headers[h] for h in PASSED_HEADERS if h in request.headers}
    ctype = (request.mimetype or "").lower()
    body: Any = None
    raw = _read_body(svc.settings.max_body_bytes) if request.method in ("POST", "PUT", "PATCH") else b""
    if raw.strip():
        if ctype == FORM and path.endswith("_search"):
            params += parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        elif ctype in XML_TYPES:
            raise UnsupportedMediaType("XML is not supported; send application/fhir+json")
        elif ctype and ctype not in JSON_TYPES:
            raise UnsupportedMediaType(f"unsupported Content-Type {ctype[:80]}")
        else:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise InvalidRequest(f"request body is not valid JSON (at character {exc.pos})",
                                     code="structure") from None
    return FhirRequest(request.method, path.strip("/"), params, headers, body, ctype or None)


def render(resp: FhirResponse, pretty: bool, payload: bytes | None = None) -> Response:
    """``payload``: ``resp.body`` already serialised (compact), used unless ``pretty``."""
    if resp.raw is not None:
        out = Response(resp.raw, status=resp.status)
    elif resp.body is None:
        out = Response(b"", status=resp.status)
    else:
        body = payload if payload is not None and not pretty else \
            orjson.dumps(resp.body, option=orjson.OPT_INDENT_2 if pretty else 0)
        out = Response(body, status=resp.status, content_type=FHIR_JSON_UTF8)
    for k, v in resp.headers.items():
        out.headers[k] = v
    return out


def context() -> RequestContext:
    ctx = getattr(request, "telehub_ctx", None)
    if isinstance(ctx, RequestContext):
        return ctx
    return RequestContext(ip=request.remote_addr, user_agent=request.headers.get("User-Agent"),
                          request_id=request.headers.get("X-Request-Id") or uuid.uuid4().hex)


def handle(path: str) -> Response:
    svc = services()
    ctx = context()
    pretty = request.args.get("_pretty") == "true"
    req = FhirRequest(request.method, path.strip("/"))
    it: Interaction | None = None
    payload: bytes | None = None
    try:
        if svc.settings.auth == "smart" and not is_public(path):
            ctx = context_from_token(request, ctx)
        req = build_request(path, svc)
        # A change and its audit entry share one transaction. A read changes nothing: it runs in a
        # read transaction (SQLite readers then run concurrently), and its entry is handed to the
        # process's group-committing appender, which writes it (with the entries of concurrent
        # requests) before the response leaves — if that fails, the read fails too.
        # AuditEvent reads copy the log into the FHIR store first, so they write.
        audit = svc.audit
        if is_write(req) or req.path.startswith("AuditEvent"):
            with svc.repository.transaction(write=True) as conn:
                it = Interaction(svc, conn, ctx)
                resp = dispatch(it, req)
                if audit is not None:
                    record(audit, conn, audit_input(it.interaction, it.rtype, it.fid, req, ctx, resp.status, resp))
        else:
            # one checkout for the read and its audit entry: if this request leads the group commit, the
            # entries are written on the connection the read used, whose page cache (SQLite) stays warm
            with svc.repository.engine.connect() as conn:
                with read_transaction(conn):
                    it = Interaction(svc, conn, ctx)
                    resp = dispatch(it, req)
                    entry = None
                    if audit is not None:
                        if resp.body is not None and resp.raw is None and resp.status < 400:
                            # serialised once: the audit finds the patients in it, and it is the response body
                            payload = orjson.dumps(resp.body)
                        entry = audit_input(it.interaction, it.rtype, it.fid, req, ctx, resp.status, resp, payload)
                if audit is not None and entry is not None:
                    audit.commit(svc.repository.engine, entry, connection=conn)
    except FhirError as exc:
        payload = None
        resp = error_response(exc)
        if isinstance(exc, TokenRequired):
            resp.headers["WWW-Authenticate"] = exc.challenge
        _audit_failure(svc, it, req, ctx, resp.status)
    except Exception as exc:  # the one place unexpected errors become a 500 OperationOutcome
        payload = None
        resp = internal_error(exc, ctx.request_id or "-")
        _audit_failure(svc, it, req, ctx, 500)
    out = render(resp, pretty, payload)
    out.headers["X-Request-Id"] = ctx.request_id or ""
    return out


def _audit_failure(svc: FhirServices, it: Interaction | None, req: FhirRequest, ctx: RequestContext,
                   status: int) -> None:
    """Record a failed or denied request after its transaction rolled back."""
    if svc.audit is None:
        return
    interaction = it.interaction if it is not None else None
    if interaction is None and status in (401, 403):
        interaction = "security"
    data = audit_input(interaction or "unknown", it.rtype if it else None, it.fid if it else None, req, ctx,
                       status, None)
    if data is None:
        return
    data.security = status in (401, 403, 500)
    try:
        with svc.repository.transaction(write=True) as conn:
            record(svc.audit, conn, data)
    except Exception:  # the failure response still goes out; the lost entry is logged loudly
        log.exception("could not record the audit entry of a failed request %s", ctx.request_id)


def make_blueprint() -> Blueprint:
    bp = Blueprint("fhir", __name__)
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
    bp.add_url_rule("/", "root", lambda: handle(""), methods=methods)
    bp.add_url_rule("/<path:path>", "path", handle, methods=methods)
    return bp


def register_error_pages(app: Flask) -> None:
    """Framework-level errors under /fhir (e.g. 405 from Werkzeug) also answer with OperationOutcome."""

    @app.errorhandler(413)
    def _too_large(_e: Any) -> Response:
        return render(error_response(PayloadTooLarge("request body too large")), False)
