"""Backend services (M), discovery (A, G), EHR launch, and the client/user/key APIs."""
from __future__ import annotations

from typing import Any

import pytest

from fhir_gateway.auth import verify_access_token
from fhir_gateway.auth.clients import ClientError
from fhir_gateway.auth.store import MemoryStore, RedisStore

from .conftest import Env, assertion, auth_params, exchange, get_code, make_env, pkce


def test_backend_services_token(env: Env) -> None:
    resp = backend(env)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300 and body["scope"] == "system/*.rs"
    assert "refresh_token" not in body and "no-store" in resp.headers["Cache-Control"]
    with env.app.app_context():
        claims = verify_access_token(body["access_token"])
    assert claims.is_system and claims.scopes.permits("s", "Patient", "system")


def backend(env: Env, **kw: Any) -> Any:
    from .conftest import backend_token

    return backend_token(env, **kw)


def test_backend_errors(env: Env) -> None:
    data = {"grant_type": "client_credentials", "scope": "system/*.rs",
            "client_assertion_type": "not_an_assertion_type", "client_assertion": assertion(env)}
    assert env.client.post("/fhir/auth/token", data=data).status_code == 400
    resp = backend(env, iss="not_a_valid_iss")
    assert resp.status_code in (400, 401)
    resp = backend(env, exp=2**31)
    assert resp.get_json()["error"] == "invalid_client"
    resp = backend(env, scope="system/*.cruds")
    assert resp.get_json()["error"] == "invalid_scope"
    resp = backend(env, scope="patient/*.rs")
    assert resp.get_json()["error"] == "invalid_scope"


def test_jti_replay_refused(env: Env) -> None:
    a = assertion(env, jti="same" * 16)
    data = {"grant_type": "client_credentials", "scope": "system/*.rs",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion": a}
    assert env.client.post("/fhir/auth/token", data=data).status_code == 200
    again = env.client.post("/fhir/auth/token", data=data)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_client"


def test_public_client_cannot_use_client_credentials(env: Env) -> None:
    resp = env.client.post("/fhir/auth/token", data={"grant_type": "client_credentials", "client_id": "public-app",
                                                     "scope": "system/*.rs"})
    assert resp.status_code == 400 and resp.get_json()["error"] in ("invalid_client", "unauthorized_client")


def test_smart_configuration(sqlite_env: Env) -> None:
    resp = sqlite_env.client.get("/fhir/.well-known/smart-configuration", headers={"Origin": "https://x"})
    assert resp.status_code == 200 and resp.content_type.startswith("application/json")
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    cfg = resp.get_json()
    assert cfg["code_challenge_methods_supported"] == ["S256"]
    assert {"authorization_code", "client_credentials", "refresh_token"} <= set(cfg["grant_types_supported"])
    assert {"client_secret_basic", "private_key_jwt"} <= set(cfg["token_endpoint_auth_methods_supported"])
    for cap in ("launch-ehr", "launch-standalone", "authorize-post", "client-public", "client-confidential-symmetric",
                "client-confidential-asymmetric", "sso-openid-connect", "permission-offline", "permission-v2",
                "context-ehr-encounter"):
        assert cap in cfg["capabilities"]
    oidc = sqlite_env.client.get("/fhir/.well-known/openid-configuration").get_json()
    assert oidc["issuer"] == cfg["issuer"] and "RS256" in oidc["id_token_signing_alg_values_supported"]
    jwks = sqlite_env.client.get("/fhir/auth/jwks").get_json()
    assert any(k["kty"] == "RSA" and k["kid"] for k in jwks["keys"]) and all("d" not in k for k in jwks["keys"])


def test_key_rotation_keeps_old_keys(sqlite_env: Env) -> None:
    verifier, challenge = pkce()
    code, _ = get_code(sqlite_env, auth_params(challenge))
    token = exchange(sqlite_env, code, verifier).get_json()["access_token"]
    sqlite_env.auth.keys.rotate("RS256")
    with sqlite_env.app.app_context():
        assert verify_access_token(token).patient == "p1"
    assert len([k for k in sqlite_env.auth.keys.jwks()["keys"] if k["kty"] == "RSA"]) == 2


def test_ehr_launch(env: Env) -> None:
    system = backend(env, scope="system/*.rs launch").get_json()["access_token"]
    assert env.client.post("/fhir/auth/launch", json={"patient": "p9"}).status_code == 401
    resp = env.client.post("/fhir/auth/launch", headers={"Authorization": f"Bearer {system}"},
                           json={"patient": "p9", "encounter": "e1", "need_patient_banner": True,
                                 "smart_style_url": "https://ehr/style.json", "intent": "reconcile",
                                 "fhirContext": [{"reference": "Encounter/e1"}]})
    assert resp.status_code == 201
    launch = resp.get_json()["launch"]
    verifier, challenge = pkce()
    code, _ = get_code(env, auth_params(challenge, client_id="conf-app", launch=launch,
                                        scope="openid fhirUser launch user/*.rs"), username="doc")
    import base64
    basic = base64.b64encode(b"conf-app:s3cret-value").decode()
    body = env.client.post("/fhir/auth/token", headers={"Authorization": f"Basic {basic}"},
                           data={"grant_type": "authorization_code", "code": code,
                                 "redirect_uri": "https://app.example/cb", "code_verifier": verifier}).get_json()
    assert body["patient"] == "p9" and body["encounter"] == "e1" and body["need_patient_banner"] is True
    assert body["fhirContext"] == [{"reference": "Encounter/e1"}] and body["smart_style_url"]
    _, challenge = pkce()
    reused = env.client.get("/fhir/auth/authorize", query_string=auth_params(challenge, launch=launch))
    assert reused.status_code == 302 and "error=invalid_request" in reused.headers["Location"]


def test_client_api(sqlite_env: Env) -> None:
    clients = sqlite_env.auth.clients
    assert {c.client_id for c in clients.list()} == {"public-app", "conf-app", "backend"}
    with pytest.raises(ClientError):
        clients.add("x", client_type="symmetric", redirect_uris=["https://a/cb"])
    with pytest.raises(ClientError):
        clients.add("public-app", client_type="public", redirect_uris=["https://a/cb"])
    assert clients.remove("conf-app") and clients.get("conf-app") is None
    from sqlalchemy import select

    from fhir_gateway.auth.tables import auth_client
    with sqlite_env.auth.engine.connect() as conn:
        stored = conn.execute(select(auth_client.c.secret_hash)).scalars().all()
    assert all(s is None or "s3cret" not in s for s in stored)


def test_disabled_user_cannot_login_or_refresh(sqlite_env: Env) -> None:
    verifier, challenge = pkce()
    code, _ = get_code(sqlite_env, auth_params(challenge))
    body = exchange(sqlite_env, code, verifier).get_json()
    sqlite_env.auth.users.disable("pat")
    resp = sqlite_env.client.post("/fhir/auth/token", data={"grant_type": "refresh_token", "client_id": "public-app",
                                                            "refresh_token": body["refresh_token"]})
    assert resp.status_code == 400


def test_stores_contract(redis_url: str, redis_key_prefix: str) -> None:
    import redis
    for store in (MemoryStore(), RedisStore(redis.Redis.from_url(redis_url), redis_key_prefix)):
        store.put("a", {"x": 1}, 60)
        assert store.get("a") == {"x": 1} and store.take("a") == {"x": 1} and store.take("a") is None
        assert store.add("j", 60) and not store.add("j", 60)


def test_redis_backed_flow(sqlite_url: str, redis_url: str, redis_key_prefix: str) -> None:
    import redis
    e = make_env(sqlite_url, store=RedisStore(redis.Redis.from_url(redis_url), redis_key_prefix))
    verifier, challenge = pkce()
    code, _ = get_code(e, auth_params(challenge))
    assert exchange(e, code, verifier).status_code == 200
    e.auth.engine.dispose()
