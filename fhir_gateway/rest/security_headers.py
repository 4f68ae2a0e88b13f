"""Security headers on every response, session-cookie hardening and the 15-minute idle logoff.

``init_app(app, settings)`` applies all of it to a Flask app (the FHIR server, and the
SMART app if it is a separate Flask app):

every response
    ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` (launch URLs and
    FHIR URLs must not leak to third parties through ``Referer``), a Content-Security-Policy
    (strict on ``text/html``; ``default-src 'none'`` on JSON; otherwise only
    ``frame-ancestors``), ``X-Frame-Options`` where it can express the framing rule, and
    ``Strict-Transport-Security`` when ``env`` is ``prod``.
framing
    The SMART app is launched inside EHR frames (Epic Hyperspace/Hyperdrive, Cerner
    PowerChart), so the allowed frame ancestors are a setting (``frame_ancestors``, default
    ``'self'``). ``X-Frame-Options`` cannot name other origins (``ALLOW-FROM`` is obsolete),
    so it is sent only for ``'self'`` (``SAMEORIGIN``) and ``'none'`` (``DENY``); with EHR
    origins listed, CSP ``frame-ancestors`` alone decides.
caching
    ``Cache-Control: no-store`` on every ``/fhir`` response except ``/fhir/metadata`` and
    ``.well-known`` documents, on every HTML page and on any response that sets a cookie.
sessions
    :func:`session_cookie_config`: ``Secure; HttpOnly; SameSite=Lax`` (``__Host-`` prefixed
    name), 15-minute ``PERMANENT_SESSION_LIFETIME`` refreshed on every request; Flask's signed
    cookie is then rejected after 15 idle minutes, and a ``_last_seen`` stamp in the session
    enforces the same for server-side session stores. ``g.session_expired`` tells a view that
    the user was logged off for inactivity.

Settings read (optional, with defaults): ``env``, ``frame_ancestors`` ("'self'"),
``session_idle_minutes`` (15), ``session_cookie_samesite`` ("Lax"; "None" adds
``Partitioned``, needed for a session inside a cross-site EHR frame),
``session_cookie_secure`` (True; False is refused in prod), ``hsts_max_age`` (two years),
``csp_connect_src`` / ``csp_frame_src`` / ``csp_media_src`` (extra sources for the video
provider, e.g. ``https://*.daily.co wss://*.daily.co``).
"""
from __future__ import annotations

import logging
import re
import secrets
import time
from datetime import timedelta
from typing import Any

from flask import Flask, Response, g, request, session

from fhir_gateway.observability.hooks import steps

log = logging.getLogger("telehub.security")

DEFAULT_FRAME_ANCESTORS = "'self'"
DEFAULT_IDLE_MINUTES = 15
DEFAULT_HSTS_MAX_AGE = 63072000  # two years, as recommended for HSTS preload eligibility
SESSION_COOKIE_NAME = "__Host-telehub_session"
LAST_SEEN_KEY = "_last_seen"
NO_STORE_EXEMPT = ("/fhir/metadata",)
_SOURCE = re.compile(r"'(?:self|none)'|\*|(?:[a-z][a-z0-9+.-]*:)(?://[A-Za-z0-9*.:\[\]_-]+(?:/[^\s;,']*)?)?"
                     r"|(?:\*\.)?[A-Za-z0-9.-]+(?::(?:\d+|\*))?(?:/[^\s;,']*)?")


def _setting(settings: Any, name: str, default: Any) -> Any:
    """An explicit ``extra`` entry wins, then the Settings field, then ``default``."""
    extra = getattr(settings, "extra", None) or {}
    value = extra[name] if name in extra else getattr(settings, name, None)
    return default if value is None else value


def _flag(value: Any) -> bool:
    """A boolean setting that may arrive as text from the environment (``"false"`` is False)."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _sources(value: Any, name: str) -> str:
    """A CSP source list from a setting; anything that could break out of the directive is refused."""
    text = " ".join(value) if isinstance(value, list | tuple) else str(value or "")
    tokens = text.split()
    bad = [t for t in tokens if not _SOURCE.fullmatch(t)]
    if bad:
        raise ValueError(f"setting {name}: not a CSP source expression: {', '.join(bad)}")
    return " ".join(tokens)


def frame_ancestors(settings: Any) -> str:
    value = _sources(_setting(settings, "frame_ancestors", DEFAULT_FRAME_ANCESTORS), "frame_ancestors")
    return value or DEFAULT_FRAME_ANCESTORS


def x_frame_options(ancestors: str) -> str | None:
    """``DENY``/``SAMEORIGIN`` when X-Frame-Options can express the rule; None when EHR origins are allowed."""
    if ancestors == "'none'":
        return "DENY"
    if ancestors == "'self'":
        return "SAMEORIGIN"
    return None


def build_html_csp(settings: Any, nonce: str | None = None) -> str:
    """The strict policy for HTML pages: same-origin everything, no inline code without the request's nonce."""
    prod = str(_setting(settings, "env", "dev")) == "prod"
    script = "'self'" + (f" 'nonce-{nonce}'" if nonce else "")
    extra_connect = _sources(_setting(settings, "csp_connect_src", ""), "csp_connect_src")
    extra_frame = _sources(_setting(settings, "csp_frame_src", ""), "csp_frame_src")
    extra_media = _sources(_setting(settings, "csp_media_src", ""), "csp_media_src")
    # form-action also governs the redirect after a form post: the SMART consent form redirects to
    # the client's registered redirect_uri, which is on another origin.
    form_action = "'self' https:" if prod else "'self' https: http://localhost:* http://127.0.0.1:*"
    directives = [
        "default-src 'self'",
        "base-uri 'none'",
        "object-src 'none'",
        f"script-src {script}",
        f"style-src {script}",
        "img-src 'self' data: blob:",
        "font-src 'self'",
        f"connect-src 'self' {extra_connect}".strip(),
        f"media-src 'self' blob: mediastream: {extra_media}".strip(),
        "worker-src 'self' blob:",
        f"frame-src 'self' {extra_frame}".strip(),
        f"form-action {form_action}",
        f"frame-ancestors {frame_ancestors(settings)}",
    ]
    if prod:
        directives.append("upgrade-insecure-requests")
    return "; ".join(directives)


def csp_nonce() -> str:
    """A per-request nonce for inline ``<script nonce=…>``/``<style nonce=…>``; added to the CSP when used."""
    nonce = g.get("csp_nonce")
    if not isinstance(nonce, str):
        nonce = secrets.token_urlsafe(16)
        g.csp_nonce = nonce
    return nonce


def session_cookie_config(settings: Any) -> dict[str, Any]:
    """Flask config for the session cookie and the idle timeout."""
    prod = str(_setting(settings, "env", "dev")) == "prod"
    secure = _flag(_setting(settings, "session_cookie_secure", True))
    if prod and not secure:
        raise ValueError("session_cookie_secure=False is refused when env=prod")
    samesite = str(_setting(settings, "session_cookie_samesite", "Lax")).capitalize()
    if samesite not in ("Lax", "Strict", "None"):
        raise ValueError("session_cookie_samesite must be Lax, Strict or None")
    if samesite == "None" and not secure:
        raise ValueError("session_cookie_samesite=None needs a Secure cookie")
    idle = int(_setting(settings, "session_idle_minutes", DEFAULT_IDLE_MINUTES))
    if not 1 <= idle <= DEFAULT_IDLE_MINUTES:
        raise ValueError(f"session_idle_minutes must be between 1 and {DEFAULT_IDLE_MINUTES}")
    return {
        # __Host-: the browser accepts it only if Secure, Path=/ and without Domain (no subdomain can set it)
        "SESSION_COOKIE_NAME": SESSION_COOKIE_NAME if secure else "telehub_session",
        "SESSION_COOKIE_SECURE": secure,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": samesite,
        "SESSION_COOKIE_PARTITIONED": samesite == "None",  # CHIPS: a cookie inside a cross-site EHR frame
        "SESSION_COOKIE_PATH": "/",
        "SESSION_COOKIE_DOMAIN": None,
        "PERMANENT_SESSION_LIFETIME": timedelta(minutes=idle),
        "SESSION_REFRESH_EACH_REQUEST": True,
    }


def _no_store(path: str, response: Response, has_session: bool) -> bool:
    if "/.well-known/" in path or path.startswith("/.well-known"):
        return False
    if path == "/fhir" or path.startswith("/fhir/"):
        return path.rstrip("/") not in NO_STORE_EXEMPT
    return response.mimetype == "text/html" or has_session or "Set-Cookie" in response.headers


def _may_have_cookie(name: str) -> bool:
    """Whether the request may carry cookie ``name``: a substring test of the raw header first, so that
    requests without cookies (API clients) never pay for parsing them."""
    raw = request.environ.get("HTTP_COOKIE")
    return isinstance(raw, str) and name in raw and name in request.cookies


def init_app(app: Flask, settings: Any) -> None:
    """Apply the session configuration and add the header and idle-logoff steps to the app's hooks
    (:mod:`fhir_gateway.observability.hooks`; once per app)."""
    if app.extensions.get("telehub.security_headers"):
        return
    app.extensions["telehub.security_headers"] = True
    app.config.update(session_cookie_config(settings))
    idle_seconds = app.permanent_session_lifetime.total_seconds()
    prod = str(_setting(settings, "env", "dev")) == "prod"
    ancestors = frame_ancestors(settings)
    xfo = x_frame_options(ancestors)
    build_html_csp(settings)  # validate the CSP settings at start-up, not on the first page
    hsts = f"max-age={int(_setting(settings, 'hsts_max_age', DEFAULT_HSTS_MAX_AGE))}; includeSubDomains"
    if xfo is None and app.config["SESSION_COOKIE_SAMESITE"] != "None":
        log.warning("frame_ancestors allows other origins but the session cookie is SameSite=%s: a session "
                    "started inside a cross-site EHR frame will not be sent back (use "
                    "session_cookie_samesite=None)", app.config["SESSION_COOKIE_SAMESITE"])
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    cookie_name = app.config["SESSION_COOKIE_NAME"]
    # the headers every response gets, by kind of body, built once
    common = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"))
    tail = ((("X-Frame-Options", xfo),) if xfo is not None else ()) + \
        ((("Strict-Transport-Security", hsts),) if prod else ())
    json_headers = (*common, ("Content-Security-Policy", f"default-src 'none'; frame-ancestors {ancestors}"), *tail)
    other_headers = (*common, ("Content-Security-Policy", f"frame-ancestors {ancestors}"), *tail)
    json_types = frozenset({"application/json", "application/fhir+json"})

    def _idle_logoff() -> None:
        if not _may_have_cookie(cookie_name):
            return  # API clients without a session: never create one (no Set-Cookie on FHIR responses)
        last = session.get(LAST_SEEN_KEY)
        if not session or (isinstance(last, int | float) and time.time() - last > idle_seconds):
            # the signed cookie outlived the lifetime (Flask dropped it) or the idle stamp is too old
            session.clear()
            session.modified = True  # so Flask deletes the stale cookie
            g.session_expired = True

    def _after(response: Response) -> Response:
        has_session = bool(session)
        if has_session:  # a signed-in user: the cookie gets a fresh 15-minute lifetime on every request
            session.permanent = True
            session[LAST_SEEN_KEY] = int(time.time())
        headers = response.headers
        mimetype = response.mimetype
        if mimetype == "text/html":
            nonce = g.get("csp_nonce")
            for name, value in common:
                headers[name] = value
            headers["Content-Security-Policy"] = build_html_csp(settings, nonce if isinstance(nonce, str) else None)
            for name, value in tail:
                headers[name] = value
        else:
            for name, value in (json_headers if mimetype in json_types else other_headers):
                headers[name] = value
        if xfo is None and "X-Frame-Options" in headers:
            del headers["X-Frame-Options"]
        if _no_store(request.path, response, has_session or _may_have_cookie(cookie_name)):
            headers["Cache-Control"] = "no-store"
            headers["Pragma"] = "no-cache"
        return response

    steps(app).add(before=_idle_logoff, after=_after)
