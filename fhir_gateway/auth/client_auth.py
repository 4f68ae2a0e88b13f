"""``private_key_jwt`` client authentication (RFC 7523 §2.2) as SMART asymmetric clients use it.

https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html — assertion
``iss = sub = client_id``, ``aud`` = the token endpoint, ``exp`` at most 5 minutes ahead,
``jti`` never reused (the replay cache is an :class:`~fhir_gateway.auth.store.EphemeralStore`),
signed RS384 or ES384.
"""
from __future__ import annotations

import time
from typing import Any

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from fhir_gateway.auth.clients import ClientStore
from fhir_gateway.auth.store import EphemeralStore

ASSERTION_ALGS = ["RS384", "ES384", "RS256", "ES256"]
MAX_ASSERTION_LIFETIME = 300


class PrivateKeyJwt(JWTBearerClientAssertion):  # type: ignore[misc]
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, token_url: str, clients: ClientStore, replay: EphemeralStore) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self._token_url = token_url
        self._clients = clients
        self._replay = replay

    def get_audiences(self) -> list[str]:
        return [self._token_url]

    def resolve_client_public_key(self, client: Any) -> KeySet:
        try:
            return self._clients.public_keys(client)
        except Exception as exc:
            raise InvalidClientError(description="The client's keys could not be loaded.") from exc

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> Any:
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=ASSERTION_ALGS)
        except (JoseError, ValueError) as exc:
            raise InvalidClientError(description="The client assertion signature is invalid.") from exc
        self.verify_claims(token.claims)
        return token.claims

    def verify_claims(self, claims: Any) -> None:
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp > time.time() + MAX_ASSERTION_LIFETIME + self.leeway:
            raise InvalidClientError(description="The assertion 'exp' must be at most 5 minutes ahead.")
        super().verify_claims(claims)

    def validate_jti(self, claims: Any, jti: Any) -> bool:
        if not isinstance(jti, str) or not jti:
            return False
        ttl = max(1, int(claims["exp"]) - int(time.time()) + self.leeway)
        return self._replay.add(f"jti:{claims['iss']}:{jti}", ttl)
