"""Discovery and token acquisition per vendor, replayed from the recorded discovery documents."""
from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs

import pytest
import redis
from joserfc import jwt
from joserfc.jwk import RSAKey

from fhir_gateway.upstream.connection import SecretRef
from fhir_gateway.upstream.discovery import capability_statement, smart_configuration
from fhir_gateway.upstream.errors import UpstreamAuthError, UpstreamBadResponse, UpstreamConfigError
from fhir_gateway.upstream.factory import build_client
from fhir_gateway.upstream.tokens import TokenProvider
from sandbox_fixtures.recordings import body
from tests.fhir_gateway.upstream.conftest import (
    CERNER_TOKEN,
    EPIC_TOKEN,
    FakeClock,
    Replay,
    make_connection,
    token_reply,
)


def _form(request: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.body if isinstance(request.body, str)
                                         else request.body.decode()).items()}


@pytest.mark.parametrize(("vendor", "smart", "metadata"), [
    ("epic", "smart-configuration_sandbox-r4.json", "capabilitystatement_sandbox-r4_may2026.json"),
    ("cerner", "smart-configuration_sandbox-provider-system_fhir-ehr-code.json",
     "capabilitystatement_sandbox-secure-r4.json"),
    ("athena", "smart-configuration_production.json", "capabilitystatement_production-r4.json"),
])
def test_discovery(harness: Any, vendor: str, smart: str, metadata: str) -> None:
    h = harness(vendor)
    h.replay.on("GET", f"{h.base}/metadata", json_body=body(vendor, metadata))
    config = smart_configuration(h.client.session, h.client.connection)
    assert config["token_endpoint"] == body(vendor, smart)["token_endpoint"]
    assert capability_statement(h.client.session, h.client.connection)["resourceType"] == "CapabilityStatement"
    assert h.replay.seen[-1].headers["Accept"] == "application/fhir+json"


def test_discovery_html_page_is_a_clear_error(harness: Any) -> None:
    h = harness("epic")
    html = body("epic", "error-request-unsupported-resource-type.json")["_non_json_body"].encode()
    h.replay.on("GET", f"{h.base}/metadata", status=404, raw=html, headers={"Content-Type": "text/html"})
    with pytest.raises(UpstreamBadResponse, match="HTML page"):
        capability_statement(h.client.session, h.client.connection)


def test_epic_backend_token_rs384_assertion_shape(harness: Any, rsa_pem: str) -> None:
    h = harness("epic")
    h.token("opaque-epic-token")
    assert h.client.tokens.token() == "opaque-epic-token"
    post = next(r for r in h.replay.seen if r.method == "POST")
    assert post.url == EPIC_TOKEN  # found through the recorded smart-configuration
    form = _form(post)
    assert form["grant_type"] == "client_credentials" and "scope" not in form
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assertion = form["client_assertion"]
    header = json.loads(base64.urlsafe_b64decode(assertion.split(".")[0] + "=="))
    assert header == {"alg": "RS384", "typ": "JWT", "kid": "k1", "jku": "https://hub.example/.well-known/jwks.json"}
    key = RSAKey.import_key(rsa_pem)
    token = jwt.decode(assertion, key, algorithms=["RS384"])
    claims = token.claims
    assert claims["iss"] == claims["sub"] == "epic-client-1"
    assert claims["aud"] == EPIC_TOKEN
    assert 0 < claims["exp"] - claims["iat"] <= 300 and claims["iat"] == int(h.clock.now)
    assert len(claims["jti"]) >= 16
    assert "Authorization" not in post.headers


def test_epic_assertion_needs_a_jku(harness: Any) -> None:
    h = harness("epic", jku=None)
    with pytest.raises(UpstreamConfigError, match="jku"):
        h.client.tokens.token()


def test_cerner_system_account_basic_auth_and_v2_scopes(harness: Any) -> None:
    h = harness("cerner")
    h.token("cerner-jwt")
    assert h.client.tokens.token() == "cerner-jwt"
    post = next(r for r in h.replay.seen if r.method == "POST")
    assert post.url == CERNER_TOKEN
    expected = base64.b64encode(b"cerner-system-account:s3cret-value").decode()
    assert post.headers["Authorization"] == f"Basic {expected}"
    scopes = _form(post)["scope"].split()
    assert scopes and all(s.startswith("system/") and s.endswith(".rs") for s in scopes)


def test_cerner_invalid_scope_shows_error_uri(harness: Any) -> None:
    h = harness("cerner")
    recorded = body("cerner", "error-token-empty-scopes-v1-syntax-2026-05-02.json")["response"]
    h.replay.on("POST", CERNER_TOKEN, status=400, raw=recorded["body_text"].encode(),
                headers={"Content-Type": "application/json"})
    with pytest.raises(UpstreamAuthError) as err:
        h.client.tokens.token()
    assert "invalid_scope" in str(err.value) and "empty-scopes" in str(err.value)
    assert "client=" not in str(err.value)  # the error_uri's query (client and tenant ids) is dropped


def test_athena_explicit_scopes_and_practice_claim(harness: Any) -> None:
    h = harness("athena")
    claims = base64.urlsafe_b64encode(json.dumps({"ah_practice": "a-1.Practice-195900"}).encode()).decode()
    h.replay.on("POST", "https://api.preview.platform.athenahealth.com/oauth2/v1/token",
                json_body={"access_token": f"eyJhbGciOiJSUzI1NiJ9.{claims.rstrip('=')}.sig", "expires_in": 300,
                           "token_type": "Bearer"})
    h.client.tokens.token()
    post = next(r for r in h.replay.seen if r.method == "POST")
    assert "system/Patient.read" in _form(post)["scope"]
    assert h.client.tokens.tenant_hint == "195900"


def test_athena_without_scopes_is_refused_before_calling(harness: Any) -> None:
    h = harness("athena", scopes=[])
    with pytest.raises(UpstreamConfigError, match="explicit scopes"):
        h.client.tokens.token()
    assert not h.replay.seen


def test_token_is_cached_and_refreshed_before_expiry(harness: Any) -> None:
    h = harness("cerner")
    h.token("t1", "t2")
    assert h.client.tokens.token() == "t1"
    h.clock.now += 400
    assert h.client.tokens.token() == "t1"  # 570 s lifetime, 60 s margin
    h.clock.now += 120
    assert h.client.tokens.token() == "t2"
    assert h.client.tokens.acquired == 2


def test_token_cache_in_redis_is_shared_by_workers(replay: Replay, clock: FakeClock, profiles: Any,
                                                   secrets: dict[str, str], redis_url: str,
                                                   redis_key_prefix: str) -> None:
    client: Any = redis.Redis.from_url(redis_url)
    conn = make_connection("cerner", profiles, secrets)
    replay.on("POST", CERNER_TOKEN, json_body=token_reply("cerner", "shared"))
    workers = [build_client(conn, redis_client=client, prefix=redis_key_prefix, clock=clock, sleep=clock.sleep)
               for _ in range(2)]
    assert [w.tokens.token() for w in workers] == ["shared", "shared"]
    assert replay.count("POST", CERNER_TOKEN) == 1
    assert client.keys(f"{redis_key_prefix}token:*")
    raw = b"".join(client.get(k) or b"" for k in client.keys(f"{redis_key_prefix}*"))
    assert b"s3cret" not in raw  # the client secret is never cached


def test_secrets_are_references_never_inline(tmp_path: Any) -> None:
    with pytest.raises(UpstreamConfigError, match="never inline"):
        SecretRef("hunter2")
    ref = SecretRef("env:TELEHUB_TEST_NOT_SET_123")
    with pytest.raises(UpstreamConfigError, match="not set"):
        ref.reveal()
    assert "hunter2" not in repr(SecretRef("env:X"))


def test_token_provider_none_style(profiles: Any, secrets: dict[str, str], clock: FakeClock) -> None:
    import requests

    from fhir_gateway.auth.store import MemoryStore

    conn = make_connection("cerner", profiles, secrets)
    none_profile = conn.profile.model_copy(update={"auth": conn.profile.auth.model_copy(update={"style": "none"})})
    from dataclasses import replace

    provider = TokenProvider(replace(conn, profile=none_profile), MemoryStore(clock), requests.Session(), clock)
    assert provider.token() is None
