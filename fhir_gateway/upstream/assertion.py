"""The client assertion of SMART Backend Services (private_key_jwt, RFC 7523 §2.2).

https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html: ``iss`` = ``sub`` =
client id, ``aud`` = the token URL, a unique ``jti``, ``exp`` at most five minutes ahead (Epic
rejects more, vendor-notes §2.2). Header: the profile's algorithm (Epic: RS384), ``kid``, and
``jku`` (the hosted JWK Set URL) where the vendor wants it.
"""
from __future__ import annotations

import uuid
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from fhir_gateway.upstream.errors import UpstreamConfigError
from vendor_profiles.schema import AuthSpec

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def load_private_key(pem: str, alg: str) -> RSAKey | ECKey:
    try:
        return ECKey.import_key(pem) if alg.startswith("ES") else RSAKey.import_key(pem)
    except Exception as exc:  # joserfc raises several types for a bad key; the message names no secret
        raise UpstreamConfigError(f"the private key cannot be used for {alg}: {type(exc).__name__}") from None


def client_assertion(auth: AuthSpec, *, client_id: str, token_url: str, key: RSAKey | ECKey, now: float,
                     kid: str | None = None, jku: str | None = None) -> str:
    """A signed assertion valid for the profile's lifetime (≤ 300 s)."""
    alg = auth.assertion_alg or "RS384"
    header: dict[str, Any] = {"alg": alg, "typ": "JWT"}
    if auth.assertion_kid:
        header["kid"] = kid or key.thumbprint()
    if auth.assertion_jku:
        if not jku:
            raise UpstreamConfigError("this vendor needs the hosted JWK Set URL (jku) in the connection")
        header["jku"] = jku
    issued = int(now)
    claims = {"iss": client_id, "sub": client_id, "aud": token_url, "jti": uuid.uuid4().hex,
              "iat": issued, "nbf": issued, "exp": issued + auth.assertion_lifetime_s}
    return jwt.encode(header, claims, key, algorithms=[alg])
