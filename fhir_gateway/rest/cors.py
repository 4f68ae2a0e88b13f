"""CORS for the FHIR API, so a SMART app served from another origin can call it with its token.

The API authenticates by bearer token only (no cookies), so every origin may call it: the
CapabilityStatement says ``rest.security.cors = true``. A preflight (``OPTIONS`` with
``Access-Control-Request-Method``) is answered before authentication — it carries no token and
touches no data. The auth pages (login, consent) are not CORS-enabled; the token, discovery and
JWKS endpoints set their own ``Access-Control-Allow-Origin``.
"""
from __future__ import annotations

from flask import Flask, Response, request

ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = ("Authorization, Content-Type, Accept, If-Match, If-None-Match, If-None-Exist, "
                 "If-Modified-Since, Prefer, X-Request-Id")
EXPOSE_HEADERS = "Location, ETag, Content-Location, Last-Modified, WWW-Authenticate, X-Request-Id"
MAX_AGE = "600"
AUTH_PAGES = ("/auth/authorize", "/auth/login", "/auth/consent", "/auth/select-patient", "/auth/logout")


def _is_api(path: str, prefix: str) -> bool:
    if not (path == prefix or path.startswith(prefix + "/")):
        return False
    return not path[len(prefix):].startswith(AUTH_PAGES)


def init_app(app: Flask, prefix: str = "/fhir") -> None:
    @app.before_request
    def _preflight() -> Response | None:
        if (request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
                and _is_api(request.path, prefix)):
            return Response(status=204, headers={
                "Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": ALLOW_METHODS,
                "Access-Control-Allow-Headers": ALLOW_HEADERS, "Access-Control-Max-Age": MAX_AGE,
                "Vary": "Origin"})
        return None

    @app.after_request
    def _cors(response: Response) -> Response:
        if "Origin" in request.headers and _is_api(request.path, prefix):
            response.headers.setdefault("Access-Control-Allow-Origin", "*")
            response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        return response
