"""Shared fixtures: a Flask app with the auth blueprint on a migrated database, clients, users and PKCE helpers."""
from __future__ import annotations

import base64
import hashlib
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import ECKey

from fhir_gateway.auth import AuthServices, init_app
from fhir_gateway.auth.store import MemoryStore
from fhir_gateway.settings import Settings
from fhir_gateway.storage.engine import make_engine
from fhir_gateway.storage.migrate import upgrade

BASE = "http://testserver/fhir"
REDIRECT = "https://app.example/cb"
TOKEN_URL = f"{BASE}/auth/token"


class Clock:
    """The clock of lock-out and TOTP checks: starts at real time and moves only when a test says so."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Env:
    app: Flask
    client: FlaskClient
    auth: AuthServices
    backend_key: ECKey
    clock: Clock = field(default_factory=Clock)
    totp: dict[str, str] = field(default_factory=dict)  # username -> TOTP secret of enrolled test users


def otp_for(env: Env, username: str) -> str:
    """A fresh, valid one-time code for ``username`` ("" without TOTP): moves the clock one step on so
    every call gives an unused code (codes are single-use)."""
    secret = env.totp.get(username)
    if secret is None:
        return ""
    env.clock.advance(30)
    return pyotp.TOTP(secret).generate_otp(int(env.clock() // 30))


def make_env(database_url: str, store: Any = None) -> Env:
    engine = make_engine(database_url)
    upgrade(engine)
    app = Flask("auth-test")
    settings = Settings(env="test", database_url=database_url, base_url=BASE)
    auth = init_app(app, settings, engine, key_provider=lambda: b"k" * 32, store=store or MemoryStore())
    auth.clients.add("public-app", client_type="public", redirect_uris=[REDIRECT],
                     scope="openid fhirUser launch launch/patient offline_access patient/*.rs user/*.rs")
    auth.clients.add("conf-app", client_type="symmetric", secret="s3cret-value", redirect_uris=[REDIRECT],
                     scope="openid fhirUser launch launch/patient offline_access patient/*.rs user/*.rs")
    key = ECKey.generate_key("P-384", parameters={"kid": "bk1", "alg": "ES384"})
    auth.clients.add("backend", client_type="asymmetric", jwks={"keys": [key.as_dict(private=False)]},
                     scope="system/*.rs launch")
    auth.users.add("pat", "correct horse", "patient", patient="p1")
    doc = auth.users.add("doc", "correct horse", "physician", fhir_user="Practitioner/d1")  # TOTP: role requires it
    e = Env(app, app.test_client(), auth, key)
    auth.users.clock = e.clock
    auth.mfa.clock = e.clock  # type: ignore[attr-defined]
    assert doc.totp_secret
    e.totp["doc"] = doc.totp_secret
    return e


@pytest.fixture
def env(database_url: str) -> Iterator[Env]:
    e = make_env(database_url)
    yield e
    e.auth.engine.dispose()


@pytest.fixture
def sqlite_env(sqlite_url: str) -> Iterator[Env]:
    e = make_env(sqlite_url)
    yield e
    e.auth.engine.dispose()


def pkce() -> tuple[str, str]:
    verifier = f"{uuid.uuid4()}-{uuid.uuid4()}"
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def auth_params(challenge: str, **kw: str) -> dict[str, str]:
    params = {"response_type": "code", "client_id": "public-app", "redirect_uri": REDIRECT,
              "scope": "openid fhirUser launch/patient offline_access patient/*.rs", "state": str(uuid.uuid4()),
              "aud": BASE, "code_challenge": challenge, "code_challenge_method": "S256", "nonce": "n-1"}
    params.update(kw)
    return params


def txn_of(html: str) -> str:
    m = re.search(r'name="txn" value="([^"]+)"', html)
    assert m, html
    return m.group(1)


def get_code(env: Env, params: dict[str, str], username: str = "pat", method: str = "GET",
             scopes: list[str] | None = None) -> tuple[str, dict[str, list[str]]]:
    c = env.client
    resp = c.get("/fhir/auth/authorize", query_string=params) if method == "GET" else \
        c.post("/fhir/auth/authorize", data=params)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    txn = txn_of(resp.get_data(as_text=True))
    resp = c.post("/fhir/auth/login", data={"txn": txn, "username": username, "password": "correct horse",
                                             "otp": otp_for(env, username)})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    page = resp.get_data(as_text=True)
    chosen = scopes if scopes is not None else re.findall(r'name="scope" value="([^"]+)"', page)
    resp = c.post("/fhir/auth/consent", data={"txn": txn_of(page), "decision": "allow", "scope": chosen})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    q = parse_qs(urlparse(resp.headers["Location"]).query)
    return q.get("code", [""])[0], q


def exchange(env: Env, code: str, verifier: str | None, **extra: str) -> Any:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": "public-app"}
    if verifier is not None:
        data["code_verifier"] = verifier
    data.update(extra)
    return env.client.post("/fhir/auth/token", data=data)


def assertion(env: Env, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": "backend", "sub": "backend", "aud": TOKEN_URL, "exp": now + 240, "jti": uuid.uuid4().hex * 2}
    body.update(claims)
    return jwt.encode({"alg": "ES384", "kid": "bk1", "typ": "JWT"}, body, env.backend_key, algorithms=["ES384"])


def backend_token(env: Env, scope: str = "system/*.rs", **claims: Any) -> Any:
    return env.client.post("/fhir/auth/token", data={
        "grant_type": "client_credentials", "scope": scope,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion(env, **claims)})


def begin_login(env: Env) -> str:
    """Start an authorization request and return the pending transaction the login form posts back."""
    _, challenge = pkce()
    resp = env.client.get("/fhir/auth/authorize", query_string=auth_params(challenge))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return txn_of(resp.get_data(as_text=True))


def post_login(env: Env, txn: str, username: str, password: str = "correct horse", otp: str = "",
               ip: str = "127.0.0.1") -> Any:
    return env.client.post("/fhir/auth/login", data={"txn": txn, "username": username, "password": password,
                                                     "otp": otp}, environ_base={"REMOTE_ADDR": ip})


def page_error(resp: Any) -> str | None:
    """The error message the login page shows, if any."""
    m = re.search(r'<p class="error" role="alert">(.*?)</p>', resp.get_data(as_text=True), re.S)
    return m.group(1) if m else None
