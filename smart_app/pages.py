"""Rendering: every HTML page gets a CSP nonce, the EHR's style as CSS variables, and safe headers.

Problems (:mod:`.smart.errors`) are rendered here and only here: title, what happened, what to do.
The EHR frames the app, so framing is governed by ``frame-ancestors`` from the settings (no
X-Frame-Options, which cannot name another origin).
"""
from __future__ import annotations

import logging
import secrets
from typing import Any

from flask import Response, g, make_response, render_template

from smart_app.services import services
from smart_app.smart.errors import LaunchProblem

log = logging.getLogger("telehub.app")


def nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return str(g.csp_nonce)


def csp(frame_ancestors: str) -> str:
    n = nonce()
    return (f"default-src 'self'; script-src 'self' 'nonce-{n}'; style-src 'self' 'nonce-{n}'; img-src 'self' data:; "
            f"connect-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors {frame_ancestors}")


def page(template: str, status: int = 200, *, style_url: str | None = None, **ctx: Any) -> Response:
    svc = services()
    variables = svc.styles.variables(style_url)
    resp = make_response(render_template(template, nonce=nonce(), style_vars=variables, **ctx), status)
    return resp


def problem_page(problem: LaunchProblem) -> Response:
    """The one place a failure becomes what the user sees (the detail is technical, never PHI)."""
    log.info("launch problem %s: %s", problem.code, problem.detail)
    return page("problem.html", problem.status, problem=problem)


def secure_headers(resp: Response) -> Response:
    settings = services().settings
    if resp.content_type.startswith("text/html"):
        resp.headers["Content-Security-Policy"] = csp(settings.frame_ancestors)
        resp.headers["Cache-Control"] = "no-store"
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("Referrer-Policy", "no-referrer")
    return resp
