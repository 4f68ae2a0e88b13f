"""Authorization code + PKCE flow and its error paths (conformance notes B, C, G, H, I, K)."""
from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlparse

from joserfc import jwt
from joserfc.jwk import KeySet

from fhir_gateway.auth import verify_access_token

from .conftest import BASE, REDIRECT, Env, auth_params, exchange, get_code, pkce


def test_full_flow_get_and_token_response(env: Env) -> None:
    verifier, challenge = pkce()
    params = auth_params(challenge)
    code, q = get_code(env, params)
    assert q["state"] == [params["state"]]
    resp = exchange(env, code, verifier)
    assert resp.status_code == 200, resp.get_json()
    assert "no-store" in resp.headers["Cache-Control"] and "no-cache" in resp.headers["Pragma"]
    body = resp.get_json()
    assert body["token_type"] == "Bearer" and isinstance(body["expires_in"], int)
    assert set(body["scope"].split()) == {"openid", "fhirUser", "launch/patient", "offline_access", "patient/*.rs"}
    assert body["patient"] == "p1" and body["need_patient_banner"] is False
    assert isinstance(body["refresh_token"], str)
    keys = KeySet.import_key_set(env.client.get("/fhir/auth/jwks").get_json())
    idt = jwt.decode(body["id_token"], keys)
    assert idt.header["alg"] == "RS256" and idt.header["kid"]
    assert idt.claims["aud"] == "public-app" and idt.claims["iss"] == BASE and idt.claims["nonce"] == "n-1"
    assert idt.claims["fhirUser"] == f"{BASE}/Patient/p1"
    with env.app.app_context():
        claims = verify_access_token(body["access_token"])
    assert claims.client_id == "public-app" and claims.patient == "p1" and claims.role == "patient"
    assert claims.scopes.permits("r", "Observation", "patient")


def test_authorize_by_post(env: Env) -> None:
    verifier, challenge = pkce()
    code, _ = get_code(env, auth_params(challenge), method="POST")
    assert exchange(env, code, verifier).status_code == 200


def test_invalid_aud_issues_no_code(env: Env) -> None:
    _, challenge = pkce()
    params = auth_params(challenge, aud="https://inferno.healthit.gov/invalid_aud")
    resp = env.client.get("/fhir/auth/authorize", query_string=params)
    assert resp.status_code == 302
    q = parse_qs(urlparse(resp.headers["Location"]).query)
    assert "code" not in q and q["error"] == ["invalid_request"] and q["state"] == [params["state"]]


def test_plain_pkce_and_missing_challenge_refused(env: Env) -> None:
    _, challenge = pkce()
    for extra in ({"code_challenge_method": "plain"}, {"code_challenge": ""}):
        params = auth_params(challenge, **extra)
        resp = env.client.get("/fhir/auth/authorize", query_string=params)
        assert resp.status_code == 302
        assert "code=" not in resp.headers["Location"] and "error=invalid_request" in resp.headers["Location"]


def test_unregistered_redirect_uri_not_redirected(env: Env) -> None:
    _, challenge = pkce()
    resp = env.client.get("/fhir/auth/authorize", query_string=auth_params(challenge, redirect_uri=REDIRECT + "x"))
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_request"


def test_bad_code_is_exactly_400(env: Env) -> None:
    resp = exchange(env, "BAD_CODE", "x" * 50)
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"
    assert "no-store" in resp.headers["Cache-Control"]


def test_bad_verifiers_refused(env: Env) -> None:
    for kind in ("omitted", "empty", "wrong", "plain"):
        _, challenge = pkce()
        code, _ = get_code(env, auth_params(challenge))
        value = {"omitted": None, "empty": "", "wrong": pkce()[0], "plain": challenge}[kind]
        resp = exchange(env, code, value)
        assert resp.status_code in (400, 401), kind
        assert resp.get_json()["error"] in ("invalid_request", "invalid_grant"), kind


def test_bad_client_id(env: Env) -> None:
    verifier, challenge = pkce()
    code, _ = get_code(env, auth_params(challenge))
    resp = exchange(env, code, verifier, client_id="BAD_CLIENT_ID")
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_client"
    basic = base64.b64encode(b"BAD_CLIENT_ID:nope").decode()
    resp = env.client.post("/fhir/auth/token", headers={"Authorization": f"Basic {basic}"},
                           data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                 "code_verifier": verifier})
    assert resp.status_code == 401 and resp.get_json()["error"] == "invalid_client"
    assert "WWW-Authenticate" in resp.headers


def test_replayed_code_refused_and_tokens_revoked(env: Env) -> None:
    verifier, challenge = pkce()
    code, _ = get_code(env, auth_params(challenge))
    first = exchange(env, code, verifier).get_json()
    again = exchange(env, code, verifier)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"
    resp = env.client.post("/fhir/auth/introspect", data={"token": first["access_token"], "client_id": "public-app"})
    assert resp.get_json() == {"active": False}


def test_confidential_symmetric_basic(env: Env) -> None:
    verifier, challenge = pkce()
    code, _ = get_code(env, auth_params(challenge, client_id="conf-app"), username="doc")
    basic = base64.b64encode(b"conf-app:s3cret-value").decode()
    resp = env.client.post("/fhir/auth/token", headers={"Authorization": f"Basic {basic}"},
                           data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                 "code_verifier": verifier})
    assert resp.status_code == 200, resp.get_json()
    wrong = base64.b64encode(b"conf-app:wrong").decode()
    resp = env.client.post("/fhir/auth/token", headers={"Authorization": f"Basic {wrong}"},
                           data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert resp.status_code == 401


def test_refresh_rotates_and_never_widens(env: Env) -> None:
    verifier, challenge = pkce()
    code, _ = get_code(env, auth_params(challenge))
    body = exchange(env, code, verifier).get_json()
    data = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": "public-app"}
    r1 = env.client.post("/fhir/auth/token", data=data)
    assert r1.status_code == 200 and "no-store" in r1.headers["Cache-Control"]
    new = r1.get_json()
    assert new["refresh_token"] != body["refresh_token"]
    assert set(new["scope"].split()) <= set(body["scope"].split())
    narrow = env.client.post("/fhir/auth/token", data={**data, "refresh_token": new["refresh_token"],
                                                       "scope": "patient/*.rs offline_access"})
    assert narrow.status_code == 200 and narrow.get_json()["scope"] == "patient/*.rs offline_access"
    wide = env.client.post("/fhir/auth/token", data={**data, "refresh_token": narrow.get_json()["refresh_token"],
                                                     "scope": "user/*.rs"})
    assert wide.status_code == 400 and wide.get_json()["error"] == "invalid_scope"
    bad = env.client.post("/fhir/auth/token", data={**data, "refresh_token": "6e1b6a1e-0000-4000-8000-000000000000"})
    assert bad.status_code in (400, 401) and bad.get_json()["error"] == "invalid_grant"


def test_introspection_and_revocation(env: Env) -> None:
    verifier, challenge = pkce()
    code, _ = get_code(env, auth_params(challenge))
    body = exchange(env, code, verifier).get_json()
    resp = env.client.post("/fhir/auth/introspect", data={"token": body["access_token"], "client_id": "public-app"})
    info = resp.get_json()
    assert resp.status_code == 200 and info["active"] is True and info["client_id"] == "public-app"
    assert set(info["scope"].split()) == set(body["scope"].split()) and info["patient"] == "p1" and info["exp"]
    junk = env.client.post("/fhir/auth/introspect", data={"token": "invalid_token_value", "client_id": "public-app"})
    assert junk.status_code == 200 and junk.get_json() == {"active": False}
    rev = env.client.post("/fhir/auth/revoke", data={"token": body["refresh_token"], "client_id": "public-app"})
    assert rev.status_code == 200
    again = env.client.post("/fhir/auth/token", data={"grant_type": "refresh_token", "client_id": "public-app",
                                                      "refresh_token": body["refresh_token"]})
    assert again.status_code in (400, 401)
    dead = env.client.post("/fhir/auth/introspect", data={"token": body["access_token"], "client_id": "public-app"})
    assert dead.get_json() == {"active": False}


def test_unsupported_grant_type(env: Env) -> None:
    resp = env.client.post("/fhir/auth/token", data={"grant_type": "not_a_grant_type"})
    assert resp.status_code == 400 and resp.get_json()["error"] == "unsupported_grant_type"
