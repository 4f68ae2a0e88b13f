"""One log line per HTTP request, built only from whitelisted fields.

    request request_id=5f0c… method=GET route=/fhir/<path:path> fhir=Patient/{id} status=200 duration_ms=3.1

- ``route`` is Flask's URL rule (``request.url_rule.rule``), never the raw path;
- ``fhir`` is the FHIR interaction template of a request under the ``fhir`` blueprint: resource
  types, ``_history``/``_search``/``metadata`` and known ``$operations`` are kept, every other
  segment becomes ``{id}`` / ``{vid}`` (so ids, which may be MRNs, never reach the log);
- no query string, no body, no header other than the request id, no client address (the
  audit trail records who and from where; logs are for operations).

The request id comes from ``X-Request-Id`` when it is a UUID (so a load balancer's id is
kept), otherwise a fresh one replaces it *in the WSGI environ* before any view runs, so
the FHIR layer, the audit trail and this line all carry the same id, and a client cannot
smuggle text into logs through that header.
"""
from __future__ import annotations

import logging
import re
import time
import uuid
from functools import cache
from typing import Any

from flask import Flask, Response, g, request

from fhir_gateway.observability.hooks import steps
from fhir_gateway.observability.log_filter import REQUEST_ATTR, render_safe_request, safe_request_fields

log = logging.getLogger("telehub.request")

REQUEST_ID_HEADER = "X-Request-Id"
_ENVIRON_KEY = "HTTP_X_REQUEST_ID"
_VALID_ID = re.compile(r"[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MAX_SEGMENTS = 8
KEYWORDS = frozenset({"metadata", "_history", "_search", ".well-known", "smart-configuration", "*"})
STANDARD_OPERATIONS = frozenset({
    "$everything", "$validate", "$export", "$import", "$capabilities", "$meta", "$meta-add", "$meta-delete",
    "$expand", "$lookup", "$translate", "$validate-code", "$subsumes", "$closure", "$document", "$match",
    "$lastn", "$stats", "$find", "$book", "$process-message", "$graphql", "$convert", "$diff", "$apply",
    "$submit", "$member-match", "$docref", "$purge", "$reindex", "$evaluate-measure", "$data-requirements",
})


@cache
def _resource_types() -> frozenset[str]:
    from fhir_gateway.definitions import resource_types

    return frozenset(resource_types())


def _known_operation(name: str) -> bool:
    if name in STANDARD_OPERATIONS:
        return True
    from fhir_gateway.operations.registry import OPERATIONS

    return name in OPERATIONS


def fhir_template(path: str) -> str:
    """``Patient/123/_history/2`` → ``Patient/{id}/_history/{vid}``; only known tokens survive."""
    segments = [s for s in path.strip("/").split("/") if s]
    if not segments:
        return "/"
    out: list[str] = []
    for seg in segments[:MAX_SEGMENTS]:
        if seg in _resource_types() or seg in KEYWORDS:
            out.append(seg)
        elif seg.startswith("$"):
            out.append(seg if _known_operation(seg) else "$op")
        elif out and out[-1] == "_history":
            out.append("{vid}")
        else:
            out.append("{id}")
    if len(segments) > MAX_SEGMENTS:
        out.append("{more}")
    return "/".join(out)


def current_request_id() -> str | None:
    """The request id of the current request (after :func:`init_app`'s hook has run)."""
    rid = g.get("request_id")
    return rid if isinstance(rid, str) else None


def _ensure_request_id() -> str:
    rid = (request.environ.get(_ENVIRON_KEY) or "").strip().lower()
    if not _VALID_ID.fullmatch(rid):
        rid = uuid.uuid4().hex
    request.environ[_ENVIRON_KEY] = rid  # what request.headers now answers, for every later reader
    g.request_id = rid
    return rid


def _fields(status: int) -> dict[str, Any]:
    started = g.get("telehub_started")
    rule = request.url_rule
    fhir = "-"
    if request.blueprint == "fhir":
        fhir = fhir_template(str((request.view_args or {}).get("path", "")))
    return {
        "request_id": g.get("request_id") or "-",
        "method": request.method,
        "route": rule.rule if rule is not None else "-",
        "fhir": fhir,
        "status": status,
        "duration_ms": (time.perf_counter() - started) * 1000 if isinstance(started, float) else -1.0,
    }


def _emit(status: int) -> None:
    if log.isEnabledFor(logging.INFO):
        fields = safe_request_fields(_fields(status))
        # the record is made and handled directly: Logger.info would also walk the stack for the
        # caller's file and line, which this line does not need (it is always this function)
        record = log.makeRecord(log.name, logging.INFO, __file__, 0, render_safe_request(fields), (), None,
                                "_emit", {REQUEST_ATTR: fields})
        log.handle(record)


def _start() -> None:
    g.telehub_started = time.perf_counter()
    _ensure_request_id()


def _log(response: Response) -> Response:
    rid = g.get("request_id") or _ensure_request_id()
    if REQUEST_ID_HEADER not in response.headers:
        response.headers[REQUEST_ID_HEADER] = rid
    _emit(response.status_code)
    g.telehub_logged = True
    return response


def _log_unhandled(exc: BaseException | None) -> None:
    # after_request does not run when an exception propagates (PROPAGATE_EXCEPTIONS / testing)
    if exc is not None and not g.get("telehub_logged"):
        _emit(500)


def init_app(app: Flask) -> None:
    """Add the request id and log steps to the app's hooks (:mod:`.hooks`); call it early in
    ``create_app`` so the id is fixed before other hooks run.

    Idempotent: a second call on the same app does nothing.
    """
    if app.extensions.get("telehub.request_log"):
        return
    app.extensions["telehub.request_log"] = True
    steps(app).add(before=_start, after=_log, teardown=_log_unhandled)
