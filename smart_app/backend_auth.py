"""SMART Backend Services for the app's own calls to the hub (client_credentials + private_key_jwt).

https://hl7.org/fhir/smart-app-launch/backend-services.html — the client assertion is an RS384 JWT
with ``iss = sub = client_id``, ``aud`` = the token endpoint, ``exp`` ≤ 5 minutes, a fresh ``jti``.
The hub accepts backend services only with ``private_key_jwt``, so the app holds a private key and
the hub holds its public JWKS (registered by the deployment, or by the demo at start).
"""
from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from smart_app.transport import Transport, TransportError

ASSERTION_LIFETIME = 240
REFRESH_MARGIN = 60  # seconds before expiry when a new token is fetched


class BackendAuthError(RuntimeError):
    """No backend token: the hub refused the assertion or could not be reached. ``code`` is the OAuth error."""

    def __init__(self, message: str, code: str = "temporarily_unavailable") -> None:
        super().__init__(message)
        self.code = code


def generate_key(kid: str = "telehub-app-rs384-1") -> dict[str, Any]:
    """A new RS384 private JWK (the demo makes one per start and registers its public half)."""
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048, parameters={"kid": kid, "alg": "RS384", "use": "sig"})
    return dict(key.as_dict(private=True))


def public_jwks(private_jwk: dict[str, Any]) -> dict[str, Any]:
    from joserfc.jwk import RSAKey

    return {"keys": [dict(RSAKey.import_key(private_jwk).as_dict(private=False))]}


@dataclass
class _Cached:
    token: str
    expires: float


class BackendTokens:
    """Gets and caches a system access token; a new one is fetched ``REFRESH_MARGIN`` s before expiry."""

    def __init__(self, transport: Transport, *, token_url: str, client_id: str, private_jwk: dict[str, Any],
                 scope: str, clock: Any = time.time) -> None:
        from joserfc.jwk import RSAKey

        self.transport = transport
        self.token_url = token_url
        self.client_id = client_id
        self.scope = scope
        self._key = RSAKey.import_key(private_jwk)
        self._clock = clock
        self._cached: _Cached | None = None
        self._lock = threading.Lock()

    def assertion(self) -> str:
        from joserfc import jwt

        now = int(self._clock())
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": self.token_url, "iat": now,
                  "exp": now + ASSERTION_LIFETIME, "jti": uuid.uuid4().hex}
        header = {"alg": "RS384", "typ": "JWT", "kid": self._key.kid}
        return str(jwt.encode(header, claims, self._key, algorithms=["RS384"]))

    def token(self) -> str:
        with self._lock:
            if self._cached is None or self._cached.expires - REFRESH_MARGIN <= self._clock():
                self._cached = self._fetch()
            return self._cached.token

    def invalidate(self) -> None:
        """Forget the token (after a 401: it was revoked or the hub restarted with new keys)."""
        with self._lock:
            self._cached = None

    def _fetch(self) -> _Cached:
        form = {"grant_type": "client_credentials", "scope": self.scope,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": self.assertion()}
        try:
            reply = self.transport.request("POST", self.token_url, body=urlencode(form).encode(), headers={
                "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
        except TransportError as exc:
            raise BackendAuthError(str(exc)) from None
        if reply.status != 200:
            try:
                code = str(reply.json().get("error", "invalid_client"))
            except ValueError:
                code = "invalid_client"
            raise BackendAuthError(f"the hub's token endpoint answered {reply.status} ({code})", code)
        body = reply.json()
        return _Cached(str(body["access_token"]), self._clock() + int(body.get("expires_in", 300)))
