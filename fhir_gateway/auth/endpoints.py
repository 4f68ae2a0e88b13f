"""Token introspection (RFC 7662) and revocation (RFC 7009) on Authlib's endpoint classes."""
from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from fhir_gateway.auth.grants import ALL_AUTH_METHODS


class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ALL_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return self.server.services.tokens.find(token_string, token_type_hint)

    def check_permission(self, token: Any, client: Any, request: Any) -> bool:
        # confidential clients act as resource servers; a public client sees only its own tokens
        return not client.is_public or token.check_client(client)

    def introspect_token(self, token: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.server.services.tokens.introspect(token)
        return result

    def create_endpoint_response(self, request: Any) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        status, body, headers = super().create_endpoint_response(request)
        if body.get("active") is False:
            body = {"active": False}
        return status, body, headers


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ALL_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return self.server.services.tokens.find(token_string, token_type_hint)

    def revoke_token(self, token: Any, request: Any) -> None:
        tokens = self.server.services.tokens
        if token.kind == "refresh_token":
            tokens.revoke_family(token.family)  # revoking a grant ends everything issued under it
        else:
            tokens.revoke(token)
