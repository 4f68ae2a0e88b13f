"""The inspector's SMART client core: discovery, the authorize URL with PKCE, the code exchange, reads.

https://hl7.org/fhir/smart-app-launch/app-launch.html — steps 1-5 of the EHR launch. No Flask here;
the state between the redirect and the callback is kept server-side by :class:`PendingLaunches`.
"""
from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sandbox_fixtures.sandbox.inspector.transport import Transport

SCOPE = "launch openid fhirUser patient/Patient.rs patient/Encounter.rs user/Practitioner.rs"
PENDING_TTL = 600
JSON = {"Accept": "application/json"}
FHIR_JSON = {"Accept": "application/fhir+json"}


class LaunchFailed(RuntimeError):
    """A step of the launch did not work; the message says which, without secrets."""


@dataclass(frozen=True)
class Pending:
    iss: str
    token_endpoint: str
    issuer: str  # the authorization server's, for the id_token
    jwks_uri: str
    verifier: str
    browser: str  # the browser's inspector cookie: binds the callback to the browser that started
    expires: float


class PendingLaunches:
    """``state`` → :class:`Pending`, in process, single use."""

    def __init__(self) -> None:
        self._items: dict[str, Pending] = {}
        self._lock = threading.Lock()

    def put(self, pending: Pending) -> str:
        state = secrets.token_urlsafe(24)
        now = time.time()
        with self._lock:
            self._items = {k: v for k, v in self._items.items() if v.expires > now}
            self._items[state] = pending
        return state

    def take(self, state: str, browser: str) -> Pending | None:
        with self._lock:
            found = self._items.pop(state, None)
        if found is None or found.expires < time.time() or not secrets.compare_digest(found.browser, browser):
            return None
        return found


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge) per RFC 7636 §4.1-4.2."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def discover(http: Transport, iss: str) -> dict[str, Any]:
    reply = http.request("GET", f"{iss.rstrip('/')}/.well-known/smart-configuration", headers=JSON)
    if reply.status != 200:
        raise LaunchFailed(f"discovery at the iss answered {reply.status}")
    config: dict[str, Any] = reply.json()
    if "S256" not in config.get("code_challenge_methods_supported", []):
        raise LaunchFailed("the server does not advertise PKCE S256")
    return config


def authorize_url(config: dict[str, Any], *, client_id: str, redirect_uri: str, iss: str, launch: str,
                  state: str, challenge: str, scope: str = SCOPE) -> str:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "launch": launch,
              "scope": scope, "state": state, "aud": iss, "code_challenge": challenge,
              "code_challenge_method": "S256"}
    return f"{config['authorization_endpoint']}?{urlencode(params)}"


def exchange(http: Transport, pending: Pending, *, code: str, client_id: str, secret: str,
             redirect_uri: str) -> dict[str, Any]:
    reply = http.request("POST", pending.token_endpoint, headers=JSON, basic=(client_id, secret), form={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
        "code_verifier": pending.verifier})
    if reply.status != 200:
        raise LaunchFailed(f"the token endpoint answered {reply.status}")
    body: dict[str, Any] = reply.json()
    return body


def id_token_claims(http: Transport, pending: Pending, id_token: str, client_id: str) -> dict[str, Any]:
    """Verify the id_token (signature by the server's JWKS, ``iss``, ``aud``, ``exp``) and return its claims."""
    from joserfc import jwt
    from joserfc.errors import JoseError
    from joserfc.jwk import KeySet

    reply = http.request("GET", pending.jwks_uri, headers=JSON)
    if reply.status != 200:
        raise LaunchFailed(f"the JWKS answered {reply.status}")
    try:
        token = jwt.decode(id_token, KeySet.import_key_set(reply.json()), algorithms=["RS256", "ES256", "RS384"])
    except (JoseError, ValueError) as exc:
        raise LaunchFailed("the id_token signature does not verify") from exc
    claims: dict[str, Any] = dict(token.claims)
    if claims.get("iss") != pending.issuer or claims.get("aud") not in (client_id, [client_id]) \
            or not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
        raise LaunchFailed("the id_token is not for this client, not from this issuer, or expired")
    return claims


def read(http: Transport, iss: str, path: str, access_token: str, query: str = "") -> dict[str, Any] | None:
    url = f"{iss.rstrip('/')}/{path}" + (f"?{query}" if query else "")
    reply = http.request("GET", url, headers={**FHIR_JSON, "Authorization": f"Bearer {access_token}"})
    if reply.status != 200:
        return None
    found: dict[str, Any] = reply.json()
    return found
