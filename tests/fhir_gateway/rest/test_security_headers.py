"""Security headers on every response, no-store on PHI, hardened session cookie and the 15-minute idle logoff."""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from flask import Flask, g, render_template_string, session

from fhir_gateway.app import create_app
from fhir_gateway.rest import security_headers
from fhir_gateway.rest.security_headers import SESSION_COOKIE_NAME, session_cookie_config
from fhir_gateway.settings import Settings

EHR_FRAMES = "'self' https://*.epic.com https://ehr.example.org:8443"


def _settings(env: str = "test", **extra: Any) -> Settings:
    return Settings(env=env, auth="off" if env != "prod" else "smart", extra=extra)


def _page_app(settings: Settings) -> Flask:
    """A small SMART-app-like Flask app: an HTML page, a login, a session-reading API."""
    app = Flask("page")
    app.secret_key = "test-only-secret-key-for-signing"
    security_headers.init_app(app, settings)

    @app.get("/app/")
    def _page() -> str:
        return render_template_string('<script nonce="{{ csp_nonce() }}">1</script>')

    @app.get("/app/static.js")
    def _js() -> Any:
        return app.response_class("1", mimetype="text/javascript")

    @app.post("/app/login")
    def _login() -> Any:
        session["user"] = "Practitioner/1"
        return {"ok": True}

    @app.get("/app/me")
    def _me() -> Any:
        return {"user": session.get("user"), "expired": bool(g.get("session_expired"))}

    return app


@pytest.fixture
def fhir_app(sqlite_url: str) -> Iterator[Flask]:
    settings = Settings(env="test", database_url=sqlite_url, base_url="http://testserver/fhir")
    app = create_app(settings)
    security_headers.init_app(app, settings)
    yield app
    app.extensions["telehub.fhir"].repository.engine.dispose()


def test_every_fhir_response_has_the_baseline_headers_and_phi_is_no_store(fhir_app: Flask) -> None:
    client = fhir_app.test_client()
    created = client.post("/fhir/Patient", data=orjson.dumps({"resourceType": "Patient", "birthDate": "1961-07-04"}),
                          headers={"Content-Type": "application/fhir+json"})
    pid = created.get_json()["id"]
    responses = {
        "create": created,
        "read": client.get(f"/fhir/Patient/{pid}"),
        "search": client.get("/fhir/Patient?birthdate=1961-07-04"),
        "history": client.get(f"/fhir/Patient/{pid}/_history"),
        "not found": client.get("/fhir/Patient/nope"),
        "root": client.post("/fhir/", data=orjson.dumps({"resourceType": "Bundle", "type": "batch"}),
                            headers={"Content-Type": "application/fhir+json"}),
    }
    for name, resp in responses.items():
        assert resp.headers["X-Content-Type-Options"] == "nosniff", name
        assert resp.headers["Referrer-Policy"] == "no-referrer", name
        assert resp.headers["Cache-Control"] == "no-store", name
        assert resp.headers["Pragma"] == "no-cache", name
        assert resp.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'self'", name
        assert resp.headers["X-Frame-Options"] == "SAMEORIGIN", name
        assert "Strict-Transport-Security" not in resp.headers, name  # only in prod
        assert "Set-Cookie" not in resp.headers, name  # an API client never gets a session
    assert created.status_code == 201 and responses["not found"].status_code == 404


def test_public_discovery_documents_stay_cacheable(fhir_app: Flask) -> None:
    client = fhir_app.test_client()
    for path in ("/fhir/metadata", "/fhir/.well-known/smart-configuration", "/.well-known/smart-configuration"):
        resp = client.get(path)
        assert "no-store" not in resp.headers.get("Cache-Control", ""), path
        assert resp.headers["X-Content-Type-Options"] == "nosniff", path
    assert client.get("/fhir/metadata").headers["Cache-Control"] == "public, max-age=60"


def test_html_pages_get_a_strict_csp_with_the_request_nonce() -> None:
    resp = _page_app(_settings()).test_client().get("/app/")
    csp = dict(d.strip().split(" ", 1) for d in resp.headers["Content-Security-Policy"].split(";"))
    nonce = resp.get_data(as_text=True).split('nonce="')[1].split('"')[0]
    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == f"'self' 'nonce-{nonce}'"
    assert csp["object-src"] == "'none'" and csp["base-uri"] == "'none'"
    assert csp["frame-ancestors"] == "'self'"
    assert "'unsafe-inline'" not in resp.headers["Content-Security-Policy"]
    assert "upgrade-insecure-requests" not in csp
    assert resp.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert resp.headers["Cache-Control"] == "no-store"  # pages show PHI
    other = _page_app(_settings()).test_client().get("/app/")
    assert other.headers["Content-Security-Policy"] != resp.headers["Content-Security-Policy"]  # fresh nonce
    js = _page_app(_settings()).test_client().get("/app/static.js")
    assert js.headers["Content-Security-Policy"] == "frame-ancestors 'self'"
    assert "Cache-Control" not in js.headers  # static assets stay cacheable


def test_prod_adds_hsts_and_upgrades_insecure_requests() -> None:
    resp = _page_app(_settings("prod")).test_client().get("/app/")
    assert resp.headers["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains"
    assert "upgrade-insecure-requests" in resp.headers["Content-Security-Policy"]
    assert "http://127.0.0.1:*" not in resp.headers["Content-Security-Policy"]


def test_ehr_frame_ancestors_setting(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="telehub.security"):
        app = _page_app(_settings(frame_ancestors=EHR_FRAMES))
    assert "SameSite=Lax" in caplog.text  # a Lax cookie is not sent inside a cross-site frame: say so
    resp = app.test_client().get("/app/")
    assert f"frame-ancestors {EHR_FRAMES}" in resp.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in resp.headers  # cannot express an allow-list; CSP decides
    deny = _page_app(_settings(frame_ancestors="'none'")).test_client().get("/app/")
    assert deny.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("value", ["https://x; script-src *", "'self', https://a.example", "'unsafe-inline'"])
def test_frame_ancestors_that_could_inject_policy_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="frame_ancestors"):
        _page_app(_settings(frame_ancestors=value))


def test_session_cookie_is_secure_httponly_lax_and_host_prefixed() -> None:
    resp = _page_app(_settings()).test_client().post("/app/login")
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE_NAME}=")
    attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
    assert {"secure", "httponly", "samesite", "path", "expires"} <= attrs and "domain" not in attrs
    assert "SameSite=Lax" in cookie and "Path=/" in cookie
    assert resp.headers["Cache-Control"] == "no-store"


def test_session_config_rules() -> None:
    cfg = session_cookie_config(_settings())
    assert cfg["PERMANENT_SESSION_LIFETIME"].total_seconds() == 15 * 60
    assert cfg["SESSION_REFRESH_EACH_REQUEST"] is True and cfg["SESSION_COOKIE_PARTITIONED"] is False
    embedded = session_cookie_config(_settings(session_cookie_samesite="None"))
    assert embedded["SESSION_COOKIE_SAMESITE"] == "None" and embedded["SESSION_COOKIE_PARTITIONED"] is True
    for off in (False, "false", "0"):  # from the environment a flag arrives as text
        with pytest.raises(ValueError, match="prod"):
            session_cookie_config(_settings("prod", session_cookie_secure=off))
    with pytest.raises(ValueError, match="between 1 and 15"):
        session_cookie_config(_settings(session_idle_minutes=60))
    with pytest.raises(ValueError, match="session_cookie_samesite must be"):
        session_cookie_config(_settings(session_cookie_samesite="Loose"))


def test_idle_session_ends_after_15_minutes_and_activity_refreshes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [time.time()]
    monkeypatch.setattr(time, "time", lambda: clock[0])  # Flask's signed cookie and our stamp both use it
    client = _page_app(_settings()).test_client()
    client.post("/app/login")
    for minutes in (10, 10, 14):  # active every ≤14 minutes: 34 minutes later still signed in
        clock[0] += minutes * 60
        assert client.get("/app/me").get_json() == {"user": "Practitioner/1", "expired": False}
    clock[0] += 15 * 60 + 1
    resp = client.get("/app/me")
    assert resp.get_json() == {"user": None, "expired": True}
    assert client.get("/app/me").get_json() == {"user": None, "expired": False}  # the cookie was removed


def test_server_side_idle_stamp_is_enforced_even_with_a_fresh_cookie() -> None:
    """A session store that does not expire cookies by itself (e.g. Redis-backed) is still logged off."""
    client = _page_app(_settings()).test_client()
    client.post("/app/login")
    with client.session_transaction() as sess:
        sess[security_headers.LAST_SEEN_KEY] = int(time.time()) - 16 * 60
    assert client.get("/app/me").get_json() == {"user": None, "expired": True}
