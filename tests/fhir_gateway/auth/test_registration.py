"""Dynamic client registration (RFC 7591) behind an initial access token, RFC 7592 read/delete, and the CLI."""
from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import click
import pytest
from click.testing import CliRunner
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import select, update

from fhir_gateway.auth import InvalidTokenError, verify_access_token
from fhir_gateway.auth.passwords import token_hash
from fhir_gateway.auth.registration_cli import initial_token
from fhir_gateway.auth.registration_store import RegistrationStore
from fhir_gateway.auth.tables import auth_client, auth_initial_token

from .conftest import REDIRECT, TOKEN_URL, Env, auth_params, exchange, get_code, pkce

REGISTER = "/fhir/auth/register"
PUBLIC = {"token_endpoint_auth_method": "none", "redirect_uris": [REDIRECT], "client_name": "Growth charts",
          "grant_types": ["authorization_code", "refresh_token"], "software_id": "gc-1",
          "scope": "openid fhirUser launch/patient offline_access patient/*.rs"}


def issue(env: Env, **kw: Any) -> str:
    kw.setdefault("expires_in", 600)
    return RegistrationStore(env.auth.engine).issue_initial(**kw)


def register(env: Env, token: str | None, body: Any, **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return env.client.post(REGISTER, json=body, headers=headers, **kw)


def test_discovery_advertises_registration(sqlite_env: Env) -> None:
    smart = sqlite_env.client.get("/fhir/.well-known/smart-configuration").get_json()
    oidc = sqlite_env.client.get("/fhir/.well-known/openid-configuration").get_json()
    assert smart["registration_endpoint"] == oidc["registration_endpoint"] == "http://testserver/fhir/auth/register"


def test_public_client_registers_and_runs_pkce_flow(env: Env) -> None:
    resp = register(env, issue(env), PUBLIC)
    assert resp.status_code == 201, resp.get_json()
    assert "no-store" in resp.headers["Cache-Control"]
    body = resp.get_json()
    client_id = body["client_id"]
    assert len(client_id) >= 20 and abs(body["client_id_issued_at"] - time.time()) < 60
    assert "client_secret" not in body and "client_secret_expires_at" not in body
    assert body["token_endpoint_auth_method"] == "none" and body["redirect_uris"] == [REDIRECT]
    assert body["grant_types"] == ["authorization_code", "refresh_token"] and body["response_types"] == ["code"]
    assert body["scope"] == PUBLIC["scope"] and body["client_name"] == "Growth charts" and body["software_id"] == "gc-1"
    assert body["registration_client_uri"] == f"http://testserver{REGISTER}/{client_id}"
    verifier, challenge = pkce()
    code, _ = get_code(env, auth_params(challenge, client_id=client_id))
    token = exchange(env, code, verifier, client_id=client_id)
    assert token.status_code == 200, token.get_json()
    assert token.get_json()["patient"] == "p1" and token.get_json()["refresh_token"]


def test_symmetric_client_gets_a_secret_once_stored_hashed(sqlite_env: Env) -> None:
    meta = {**PUBLIC, "token_endpoint_auth_method": "client_secret_basic"}
    body = register(sqlite_env, issue(sqlite_env), meta).get_json()
    secret, client_id = body["client_secret"], body["client_id"]
    assert len(secret) >= 40 and body["client_secret_expires_at"] == 0
    with sqlite_env.auth.engine.connect() as conn:
        stored = conn.execute(select(auth_client.c.secret_hash).where(auth_client.c.client_id == client_id)).scalar()
    assert stored and stored.startswith("scrypt$") and secret not in stored
    verifier, challenge = pkce()
    code, _ = get_code(sqlite_env, auth_params(challenge, client_id=client_id))
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    resp = sqlite_env.client.post("/fhir/auth/token", headers={"Authorization": f"Basic {basic}"}, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier})
    assert resp.status_code == 200, resp.get_json()
    read = sqlite_env.client.get(body["registration_client_uri"],
                                 headers={"Authorization": f"Bearer {body['registration_access_token']}"})
    assert read.status_code == 200 and "client_secret" not in read.get_json()


def test_backend_client_registers_and_gets_client_credentials_token(env: Env) -> None:
    key = ECKey.generate_key("P-384", parameters={"kid": "dcr1", "alg": "ES384"})
    meta = {"token_endpoint_auth_method": "private_key_jwt", "grant_types": ["client_credentials"],
            "jwks": {"keys": [key.as_dict(private=False)]}, "scope": "system/*.rs launch", "client_name": "Sync"}
    body = register(env, issue(env), meta).get_json()
    assert body["response_types"] == [] and body["jwks"]["keys"][0]["kid"] == "dcr1" and "redirect_uris" in body
    client_id = body["client_id"]
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": TOKEN_URL, "exp": now + 240, "jti": uuid.uuid4().hex}
    assertion = jwt.encode({"alg": "ES384", "kid": "dcr1", "typ": "JWT"}, claims, key, algorithms=["ES384"])
    resp = env.client.post("/fhir/auth/token", data={
        "grant_type": "client_credentials", "scope": "system/*.rs",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion})
    assert resp.status_code == 200, resp.get_json()
    with env.app.app_context():
        assert verify_access_token(resp.get_json()["access_token"]).client_id == client_id


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic abc"])
def test_missing_or_unknown_initial_token(sqlite_env: Env, header: str | None) -> None:
    resp = sqlite_env.client.post(REGISTER, json=PUBLIC, headers={"Authorization": header} if header else {})
    assert resp.status_code == 401 and resp.get_json() == {"error": "invalid_token"}
    challenge = resp.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert ('error="invalid_token"' in challenge) == (header == "Bearer nope")


def test_expired_and_used_up_tokens(sqlite_env: Env) -> None:
    expired = issue(sqlite_env)
    with sqlite_env.auth.engine.begin() as conn:
        conn.execute(update(auth_initial_token).where(auth_initial_token.c.token_hash == token_hash(expired))
                     .values(expires=int(time.time()) - 1))
    assert register(sqlite_env, expired, PUBLIC).status_code == 401
    once = issue(sqlite_env, uses=1)
    assert register(sqlite_env, once, {**PUBLIC, "redirect_uris": "x"}).status_code == 400  # not consumed
    assert register(sqlite_env, once, PUBLIC).status_code == 201
    again = register(sqlite_env, once, PUBLIC)
    assert again.status_code == 401 and again.get_json()["error"] == "invalid_token"
    twice = issue(sqlite_env, uses=2)
    assert [register(sqlite_env, twice, PUBLIC).status_code for _ in range(3)] == [201, 201, 401]
    with sqlite_env.auth.engine.connect() as conn:
        hashes = conn.execute(select(auth_initial_token.c.token_hash)).scalars().all()
    assert once not in hashes and token_hash(once) in hashes


def test_body_must_be_a_small_json_object(sqlite_env: Env) -> None:
    token = issue(sqlite_env, uses=10)
    auth = {"Authorization": f"Bearer {token}"}
    form = sqlite_env.client.post(REGISTER, data={"redirect_uris": REDIRECT}, headers=auth)
    assert form.status_code == 400 and form.get_json()["error"] == "invalid_client_metadata"
    bad = sqlite_env.client.post(REGISTER, data="{not json", content_type="application/json", headers=auth)
    assert bad.status_code == 400 and bad.get_json()["error"] == "invalid_client_metadata"
    assert register(sqlite_env, token, [PUBLIC]).get_json()["error"] == "invalid_client_metadata"
    big = register(sqlite_env, token, {**PUBLIC, "client_name": "x" * 70_000})
    assert big.status_code == 413


LOCAL = ["http://localhost:8000/cb", "http://127.0.0.1/cb", "https://app.example/cb?x=1"]


@pytest.mark.parametrize(("change", "error"), [
    ({"redirect_uris": ["http://app.example/cb"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["https://app.example/cb#frag"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["/relative"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["myapp://cb"]}, "invalid_redirect_uri"),
    ({"redirect_uris": []}, "invalid_redirect_uri"),
    ({"redirect_uris": "https://app.example/cb"}, "invalid_client_metadata"),
    ({"token_endpoint_auth_method": "client_secret_jwt"}, "invalid_client_metadata"),
    ({"token_endpoint_auth_method": ["none"]}, "invalid_client_metadata"),
    ({"grant_types": ["implicit"]}, "invalid_client_metadata"),
    ({"grant_types": ["password"]}, "invalid_client_metadata"),
    ({"grant_types": ["refresh_token"]}, "invalid_client_metadata"),
    ({"grant_types": ["client_credentials"]}, "invalid_client_metadata"),
    ({"response_types": ["token"]}, "invalid_client_metadata"),
    ({"response_types": ["code", "id_token"]}, "invalid_client_metadata"),
    ({"jwks_uri": "https://keys.example/jwks"}, "invalid_client_metadata"),
    ({"scope": "patient/*.bogus"}, "invalid_client_metadata"),
    ({"scope": "not-a-scope"}, "invalid_client_metadata"),
    ({"scope": 7}, "invalid_client_metadata"),
    ({"scope": "system/*.rs"}, "invalid_client_metadata"),  # nothing usable by authorization_code
    ({"client_name": ""}, "invalid_client_metadata"),
    ({"logo_uri": "http://app.example/logo.png"}, "invalid_client_metadata"),
])
def test_invalid_metadata(sqlite_env: Env, change: dict[str, Any], error: str) -> None:
    resp = register(sqlite_env, issue(sqlite_env), {**PUBLIC, **change})
    assert resp.status_code == 400 and resp.get_json()["error"] == error, resp.get_json()
    assert resp.get_json()["error_description"]


def test_loopback_http_and_queries_allowed(sqlite_env: Env) -> None:
    resp = register(sqlite_env, issue(sqlite_env), {**PUBLIC, "redirect_uris": LOCAL})
    assert resp.status_code == 201 and resp.get_json()["redirect_uris"] == LOCAL


def _key_meta(**kw: Any) -> dict[str, Any]:
    key = ECKey.generate_key("P-384", parameters={"kid": "k"})
    meta = {"token_endpoint_auth_method": "private_key_jwt", "grant_types": ["client_credentials"],
            "scope": "system/*.rs", "jwks": {"keys": [key.as_dict(private=False)]}}
    meta.update(kw)
    return {k: v for k, v in meta.items() if v is not None}


@pytest.mark.parametrize(("meta", "status"), [
    (_key_meta(jwks_uri="https://keys.example/jwks.json"), 400),  # both
    (_key_meta(jwks=None), 400),  # neither
    (_key_meta(jwks={"keys": [ECKey.generate_key("P-256").as_dict(private=True)]}), 400),  # private material
    (_key_meta(jwks={"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}), 400),
    (_key_meta(jwks={"keys": []}), 400),
    (_key_meta(jwks=None, jwks_uri="http://keys.example/jwks.json"), 400),
    (_key_meta(jwks=None, jwks_uri="https://127.0.0.1/jwks.json"), 400),
    (_key_meta(jwks=None, jwks_uri="https://localhost/jwks.json"), 400),
    (_key_meta(jwks=None, jwks_uri="https://keys.example/jwks.json"), 201),
    (_key_meta(scope="patient/*.rs"), 400),  # a backend-only client needs system scopes
])
def test_private_key_jwt_keys(sqlite_env: Env, meta: dict[str, Any], status: int) -> None:
    resp = register(sqlite_env, issue(sqlite_env), meta)
    assert resp.status_code == status, resp.get_json()
    if status == 400:
        assert resp.get_json()["error"] == "invalid_client_metadata"


def test_scope_narrowed_to_ceiling_and_grants(sqlite_env: Env) -> None:
    token = issue(sqlite_env, scope_ceiling="openid fhirUser launch/patient patient/*.rs offline_access", uses=3)
    asked = {**PUBLIC, "grant_types": ["authorization_code"],
             "scope": "openid patient/Observation.rs user/*.rs system/*.rs offline_access launch/patient"}
    body = register(sqlite_env, token, asked).get_json()
    assert body["scope"] == "openid patient/Observation.rs launch/patient"  # no refresh grant → no offline_access
    default = register(sqlite_env, token, {k: v for k, v in PUBLIC.items() if k != "scope"}).get_json()
    assert default["scope"] == "openid fhirUser launch/patient patient/*.rs offline_access"
    outside = register(sqlite_env, token, {**PUBLIC, "scope": "user/*.cruds"})
    assert outside.status_code == 400 and outside.get_json()["error"] == "invalid_client_metadata"
    unbounded = issue(sqlite_env)
    missing = register(sqlite_env, unbounded, {k: v for k, v in PUBLIC.items() if k != "scope"})
    assert missing.status_code == 400 and "scope" in missing.get_json()["error_description"]


def test_read_and_delete_own_registration(env: Env) -> None:
    token = issue(env, uses=2)
    mine = register(env, token, PUBLIC).get_json()
    other = register(env, token, PUBLIC).get_json()
    uri, bearer = mine["registration_client_uri"], {"Authorization": f"Bearer {mine['registration_access_token']}"}
    read = env.client.get(uri, headers=bearer)
    assert read.status_code == 200 and "no-store" in read.headers["Cache-Control"]
    assert {k: v for k, v in read.get_json().items()} == \
        {k: v for k, v in mine.items() if k != "registration_access_token"}
    assert env.client.get(uri).status_code == 401
    assert env.client.get(uri, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert env.client.get(other["registration_client_uri"], headers=bearer).status_code == 401
    assert env.client.delete(other["registration_client_uri"], headers=bearer).status_code == 401
    verifier, challenge = pkce()
    code, _ = get_code(env, auth_params(challenge, client_id=mine["client_id"]))
    access = exchange(env, code, verifier, client_id=mine["client_id"]).get_json()["access_token"]
    deleted = env.client.delete(uri, headers=bearer)
    assert deleted.status_code == 204
    assert env.client.get(uri, headers=bearer).status_code == 401
    assert env.auth.clients.get(mine["client_id"]) is None and env.auth.clients.get(other["client_id"]) is not None
    with env.app.app_context(), pytest.raises(InvalidTokenError):
        verify_access_token(access)


def test_cli_issues_initial_token(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from .conftest import make_env

    e = make_env(sqlite_url)
    monkeypatch.delenv("TELEHUB_SETTINGS_FILE", raising=False)
    monkeypatch.setenv("TELEHUB_DATABASE_URL", sqlite_url)
    group = click.Group("clients", commands=[initial_token])
    runner = CliRunner()
    result = runner.invoke(group, ["initial-token", "--expires-in", "3600", "--uses", "2",
                                   "--scope-ceiling", "openid patient/*.rs"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert "\n" not in token and len(token) >= 40 and "2 registration(s)" in result.stderr
    with e.auth.engine.connect() as conn:
        row = conn.execute(select(auth_initial_token)).one()
    assert row.token_hash == token_hash(token) and row.uses_left == 2 and row.scope_ceiling == "openid patient/*.rs"
    assert 3500 < row.expires - time.time() <= 3600
    body = register(e, token, PUBLIC).get_json()
    assert body["scope"] == "openid patient/*.rs"
    bad = runner.invoke(group, ["initial-token", "--scope-ceiling", "patient/*.bogus"])
    assert bad.exit_code == 2 and "scope-ceiling" in bad.output
    assert runner.invoke(group, ["initial-token", "--uses", "0"]).exit_code == 2
    e.auth.engine.dispose()
