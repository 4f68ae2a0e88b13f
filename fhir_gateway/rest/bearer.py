"""Bearer tokens on FHIR requests: who is asking, from the SMART authorization server's token.

With ``TELEHUB_AUTH=smart`` every FHIR request except the public ones
(``/metadata``, ``/.well-known/*``) needs a valid bearer token: none or an
invalid one gets 401 with ``WWW-Authenticate`` (RFC 6750). The verified claims
become the :class:`RequestContext` the access decision works from.
"""
from __future__ import annotations

from flask import Request

from fhir_gateway.access import RequestContext
from fhir_gateway.errors import Unauthorized

PUBLIC_PATHS = ("metadata", ".well-known/smart-configuration", ".well-known/openid-configuration")


class TokenRequired(Unauthorized):
    """401 with the RFC 6750 challenge."""

    def __init__(self, diagnostics: str, error: str | None = None) -> None:
        super().__init__(diagnostics)
        self.challenge = 'Bearer realm="telehub"' + (f', error="{error}"' if error else "")


def is_public(path: str) -> bool:
    return path.strip("/") in PUBLIC_PATHS


def context_from_token(request: Request, base: RequestContext) -> RequestContext:
    """Verify the bearer token and return the requester's context (raises TokenRequired)."""
    from fhir_gateway.auth import verify_access_token
    from fhir_gateway.auth.errors import AuthError

    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenRequired("a bearer access token is required")
    try:
        claims = verify_access_token(token.strip())
    except AuthError:
        raise TokenRequired("the access token is invalid, expired or revoked", "invalid_token") from None
    role = claims.role or ("integration" if claims.is_system else None)
    return RequestContext(client_id=claims.client_id, user=claims.fhir_user or claims.user, role=role,
                          scopes=frozenset(claims.scopes.raw), patient=claims.patient, ip=base.ip,
                          user_agent=base.user_agent, request_id=base.request_id,
                          extra={"scope_set": claims.scopes, "encounter": claims.encounter})
