"""A SMART app on another origin can call the FHIR API: preflights are answered without a token, responses
carry Access-Control-Allow-Origin and expose Location/ETag; the login and consent pages stay same-origin."""
from __future__ import annotations

from fhir_gateway.app import create_app
from tests.fhir_gateway.conftest import make_settings

ORIGIN = {"Origin": "https://app.example"}


def test_preflight_is_answered_before_authentication(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url, auth="smart"))
    resp = app.test_client().options("/fhir/Patient/123", headers={
        **ORIGIN, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"})
    assert resp.status_code == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]
    assert "PATCH" in resp.headers["Access-Control-Allow-Methods"]
    app.extensions["telehub.fhir"].repository.engine.dispose()


def test_responses_allow_any_origin_and_expose_fhir_headers(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url, auth="smart"))
    client = app.test_client()
    denied = client.get("/fhir/Patient", headers=ORIGIN)
    assert denied.status_code == 401  # the browser must be able to read the 401 and its challenge
    assert denied.headers["Access-Control-Allow-Origin"] == "*"
    assert "WWW-Authenticate" in denied.headers["Access-Control-Expose-Headers"]
    assert "ETag" in client.get("/fhir/metadata", headers=ORIGIN).headers["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Origin" not in client.get("/fhir/metadata").headers  # no Origin, no CORS
    login = client.options("/fhir/auth/login", headers={**ORIGIN, "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in login.headers
    app.extensions["telehub.fhir"].repository.engine.dispose()
