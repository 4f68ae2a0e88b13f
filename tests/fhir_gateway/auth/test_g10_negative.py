"""(g)(10)-style negative checks against the whole hub (authorization server + FHIR server): every bad
token, grant and client gets exactly the error the specs name, and nothing is served with it."""
from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import update

from fhir_gateway.app import create_app
from fhir_gateway.auth.tables import auth_code, auth_token
from tests.fhir_gateway.auth.conftest import REDIRECT, pkce, txn_of
from tests.fhir_gateway.conftest import BASE, make_settings, patient

PASSWORD = "correct horse battery"
TOKEN = "/fhir/auth/token"


@dataclass
class Hub:
    app: Any
    auth: Any
    client: FlaskClient
    pid: str

    def fhir(self, path: str, token: str | None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return self.client.get(f"/fhir/{path}", headers=headers)

    def code(self, client_id: str = "app", scope: str = "launch/patient offline_access patient/*.rs",
             ) -> tuple[str, str]:
        verifier, challenge = pkce()
        resp = self.client.get("/fhir/auth/authorize", query_string={
            "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": scope,
            "state": "st", "aud": BASE, "code_challenge": challenge, "code_challenge_method": "S256"})
        resp = self.client.post("/fhir/auth/login", data={"txn": txn_of(resp.get_data(as_text=True)),
                                                          "username": "pat", "password": PASSWORD, "otp": ""})
        page = resp.get_data(as_text=True)
        import re

        resp = self.client.post("/fhir/auth/consent", data={
            "txn": txn_of(page), "decision": "allow", "scope": re.findall(r'name="scope" value="([^"]+)"', page)})
        location = resp.headers["Location"]
        return location.split("code=")[1].split("&")[0], verifier

    def tokens(self, client_id: str = "app", **basic: str) -> dict[str, Any]:
        code, verifier = self.code(client_id)
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                "code_verifier": verifier, "client_id": client_id}
        resp = self.client.post(TOKEN, data=data, headers=_basic(**basic) if basic else {})
        assert resp.status_code == 200, resp.get_data(as_text=True)
        out: dict[str, Any] = resp.get_json()
        return out


def _basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


@pytest.fixture
def hub(database_url: str) -> Iterator[Hub]:
    app = create_app(make_settings(database_url, auth="smart"))
    auth = app.extensions["telehub.auth"].services
    auth.clients.add("ops", client_type="public", redirect_uris=["https://x.example/cb"], scope="system/*.cruds")
    system = auth.tokens.issue(client_id="ops", user=None, scope="system/*.cruds")["access_token"]
    client = app.test_client()
    resp = client.post("/fhir/Patient", json=patient(family="Negative"),
                       headers={"Authorization": f"Bearer {system}", "Content-Type": "application/fhir+json"})
    pid = resp.get_json()["id"]
    scope = "openid fhirUser launch/patient offline_access patient/*.rs"
    auth.clients.add("app", client_type="public", redirect_uris=[REDIRECT], scope=scope)
    auth.clients.add("conf", client_type="symmetric", secret="a-long-client-secret", redirect_uris=[REDIRECT],
                     scope=scope)
    auth.users.add("pat", PASSWORD, "patient", patient=pid)
    yield Hub(app, auth, client, pid)
    app.extensions["telehub.fhir"].repository.engine.dispose()


def _is_401(resp: Any) -> None:
    assert resp.status_code == 401, resp.get_data(as_text=True)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert resp.get_json()["resourceType"] == "OperationOutcome"


def test_missing_malformed_and_foreign_tokens_get_exactly_401(hub: Hub) -> None:
    _is_401(hub.fhir(f"Patient/{hub.pid}", None))
    _is_401(hub.fhir(f"Patient/{hub.pid}", ""))
    _is_401(hub.fhir(f"Patient/{hub.pid}", "garbage"))
    foreign = RSAKey.generate_key(2048, parameters={"kid": "evil"})
    now = int(time.time())
    forged = jwt.encode({"alg": "RS256", "kid": "evil"}, {"iss": BASE, "aud": BASE, "sub": "x", "client_id": "app",
                                                         "scope": "system/*.cruds", "exp": now + 300, "jti": "j"},
                        foreign)
    _is_401(hub.fhir(f"Patient/{hub.pid}", forged))
    basic = hub.client.get(f"/fhir/Patient/{hub.pid}", headers=_basic("app", "x"))
    _is_401(basic)


def test_expired_revoked_and_wrong_audience_tokens_get_401(hub: Hub) -> None:
    body = hub.tokens()
    assert hub.fhir(f"Patient/{hub.pid}", body["access_token"]).status_code == 200
    with hub.auth.engine.begin() as conn:  # expire it
        conn.execute(update(auth_token).values(access_expires=int(time.time()) - 10))
    expired = hub.auth.tokens.issue(client_id="app", user=hub.auth.users.by_username("pat"),
                                    scope="patient/*.rs", context={"patient": hub.pid}, lifetime=1)
    time.sleep(2)
    _is_401(hub.fhir(f"Patient/{hub.pid}", expired["access_token"]))
    fresh = hub.tokens()
    resp = hub.client.post("/fhir/auth/revoke", data={"token": fresh["access_token"], "client_id": "app"})
    assert resp.status_code == 200
    _is_401(hub.fhir(f"Patient/{hub.pid}", fresh["access_token"]))
    now = int(time.time())
    other_aud = hub.auth.keys.sign({"iss": BASE, "aud": "https://elsewhere.example/fhir", "sub": "ops",
                                    "client_id": "ops", "scope": "system/*.cruds", "iat": now, "exp": now + 60,
                                    "jti": "aud-test"})
    _is_401(hub.fhir(f"Patient/{hub.pid}", other_aud))


def test_a_code_older_than_60_seconds_is_refused(hub: Hub) -> None:
    code, verifier = hub.code()
    with hub.auth.engine.begin() as conn:
        conn.execute(update(auth_code).values(expires=int(time.time()) - 1))
    resp = hub.client.post(TOKEN, data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                        "code_verifier": verifier, "client_id": "app"})
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"


@pytest.mark.parametrize("change, errors", [
    ({"grant_type": "password"}, {"unsupported_grant_type"}),
    ({"grant_type": ""}, {"unsupported_grant_type", "invalid_request"}),
    ({"redirect_uri": REDIRECT + "/other"}, {"invalid_grant"}),
    ({"code": "not-a-code"}, {"invalid_grant"}),
    ({"client_id": "no-such-client"}, {"invalid_client"}),
    ({"code_verifier": "short"}, {"invalid_grant", "invalid_request"}),
])
def test_token_request_errors_are_400_with_the_spec_error(hub: Hub, change: dict[str, str], errors: set[str]) -> None:
    code, verifier = hub.code()
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier,
            "client_id": "app", **change}
    resp = hub.client.post(TOKEN, data=data)
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert resp.get_json()["error"] in errors
    assert resp.headers["Cache-Control"] == "no-store" and resp.headers["Pragma"] == "no-cache"


def test_wrong_secret_by_header_is_401_invalid_client(hub: Hub) -> None:
    code, verifier = hub.code("conf")
    resp = hub.client.post(TOKEN, headers=_basic("conf", "wrong-secret"), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier})
    assert resp.status_code == 401 and resp.get_json()["error"] == "invalid_client"
    assert "WWW-Authenticate" in resp.headers


def test_bad_refresh_tokens_are_invalid_grant(hub: Hub) -> None:
    body = hub.tokens()
    for bad in ("not-a-refresh-token", body["access_token"], ""):
        resp = hub.client.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": bad, "client_id": "app"})
        assert resp.status_code == 400, bad
        assert resp.get_json()["error"] in ("invalid_grant", "invalid_request"), bad
    wider = hub.client.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"],
                                         "client_id": "app", "scope": "patient/*.rs user/*.cruds"})
    assert wider.status_code == 400 and wider.get_json()["error"] == "invalid_scope"


def test_a_revoked_client_can_neither_refresh_nor_use_its_tokens(hub: Hub) -> None:
    body = hub.tokens()
    hub.auth.clients.disable("app")
    resp = hub.client.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"],
                                        "client_id": "app"})
    assert resp.status_code in (400, 401) and resp.get_json()["error"] in ("invalid_client", "invalid_grant")
    _is_401(hub.fhir(f"Patient/{hub.pid}", body["access_token"]))


def test_insufficient_scope_is_403_with_an_operation_outcome(hub: Hub) -> None:
    body = hub.tokens()
    resp = hub.client.post("/fhir/Observation", json={"resourceType": "Observation", "status": "final",
                                                      "code": {"text": "x"}},
                           headers={"Authorization": f"Bearer {body['access_token']}",
                                    "Content-Type": "application/fhir+json"})
    assert resp.status_code == 403 and resp.get_json()["resourceType"] == "OperationOutcome"


def test_registration_and_refused_token_requests_are_audited(database_url: str) -> None:
    from fhir_gateway.auth.registration_store import RegistrationStore

    app = create_app(make_settings(database_url, auth="smart"))
    services = app.extensions["telehub.fhir"]
    auth = app.extensions["telehub.auth"].services
    initial = RegistrationStore(auth.engine).issue_initial(expires_in=600, scope_ceiling="patient/*.rs", uses=1)
    client = app.test_client()
    created = client.post("/fhir/auth/register", json={
        "redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code"], "response_types": ["code"], "scope": "patient/*.rs"},
        headers={"Authorization": f"Bearer {initial}"})
    assert created.status_code == 201, created.get_data(as_text=True)
    refused = client.post("/fhir/auth/register", json={}, headers={"Authorization": "Bearer nope"})
    assert refused.status_code == 401
    with services.repository.transaction() as conn:
        events = list(services.audit.entries(conn))
    registrations = [e for e in events if "registration" in str(e)]
    assert len(registrations) == 2
    assert {e["outcome"] for e in registrations} == {"0", "4"}
    assert initial not in str(events)
    services.repository.engine.dispose()
