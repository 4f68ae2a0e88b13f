"""The grants this server registers (RFC 6749 §4.1, §4.4, §6) with their SMART behaviour.

* :class:`AuthorizationCode` — PKCE S256 (extension :class:`~.pkce.S256CodeChallenge`),
  codes single-use and valid 60 s; a replayed code revokes every token issued from it.
* :class:`RefreshToken` — rotates the refresh token, never widens scope.
* :class:`ClientCredentials` — SMART backend services, ``private_key_jwt`` only, system scopes.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    UnauthorizedClientError,
    grants,
)
from sqlalchemy import insert, select, update

from fhir_gateway.auth.passwords import token_hash
from fhir_gateway.auth.scopes import allowed_subset, parse_scopes
from fhir_gateway.auth.tables import auth_code
from fhir_gateway.auth.tokens import SESSION_KEY

CODE_LIFETIME = 60
TOKEN_HEADERS = [("Content-Type", "application/json"), ("Cache-Control", "no-store"), ("Pragma", "no-cache")]
ALL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]


@dataclass
class AuthCode:
    code_hash: str
    client_id: str
    user_pk: int
    redirect_uri: str
    scope: str
    code_challenge: str
    code_challenge_method: str
    nonce: str | None
    context: dict[str, Any] = field(default_factory=dict)

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


class AuthorizationCode(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS

    def save_authorization_code(self, code: str, request: Any) -> None:
        now = int(time.time())
        payload = request.payload
        with self.server.services.engine.begin() as conn:
            conn.execute(insert(auth_code).values(
                code_hash=token_hash(code), client_id=request.client.get_client_id(), user_pk=request.user.pk,
                redirect_uri=payload.redirect_uri, scope=getattr(request, "granted_scope", None) or request.scope,
                code_challenge=payload.data["code_challenge"], code_challenge_method="S256",
                nonce=payload.data.get("nonce"), context=json.dumps(getattr(request, "smart_context", {}) or {}),
                expires=now + CODE_LIFETIME, used=False, created=now))

    def query_authorization_code(self, code: str, client: Any) -> AuthCode | None:
        """Consume the code atomically. A second use revokes every token issued from it (RFC 6749 §4.1.2)."""
        digest = token_hash(code)
        engine = self.server.services.engine
        with engine.begin() as conn:
            row = conn.execute(select(auth_code).where(auth_code.c.code_hash == digest)).first()
            if row is None:
                return None
            won = conn.execute(update(auth_code).where(auth_code.c.code_hash == digest, auth_code.c.used.is_(False))
                               .values(used=True)).rowcount == 1
        if not won:
            self.server.services.tokens.revoke_family(digest)
            return None
        if row.expires <= time.time() or row.client_id != client.get_client_id():
            return None
        return AuthCode(digest, row.client_id, int(row.user_pk), row.redirect_uri, row.scope, row.code_challenge,
                        row.code_challenge_method, row.nonce, json.loads(row.context))

    def delete_authorization_code(self, authorization_code: AuthCode) -> None:
        """Nothing to do: the code was consumed when it was looked up."""

    def authenticate_user(self, authorization_code: AuthCode) -> Any:
        user = self.server.services.users.get(authorization_code.user_pk)
        return user if user is not None and not user.disabled else None

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        code: AuthCode = self.request.authorization_code
        user = self.authenticate_user(code)
        if not user:
            raise InvalidGrantError("The user of this code is no longer active.")
        self.request.user = user
        body = self.server.services.tokens.issue(
            client_id=code.client_id, user=user, scope=code.scope, context=code.context, family=code.code_hash,
            nonce=code.nonce, refresh=self.request.client.check_grant_type("refresh_token"),
            session=code.context.get(SESSION_KEY))
        return 200, body, TOKEN_HEADERS


class RefreshToken(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> Any:
        record = self.server.services.tokens.find_refresh(refresh_token)
        if record is None or record.is_revoked() or record.is_expired():
            return None
        return record

    def authenticate_user(self, refresh_token: Any) -> Any:
        user = self.server.services.users.get(refresh_token.user_pk)
        return user if user is not None and not user.disabled else None

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        record = self.request.refresh_token
        user = self.authenticate_user(record)
        if not user:
            raise InvalidGrantError("The user of this refresh token is disabled.")
        tokens = self.server.services.tokens
        if not tokens.use_refresh(record):
            tokens.revoke_family(record.family)  # a rotated refresh token came back: treat as stolen
            raise InvalidGrantError()
        session = record.context.get(SESSION_KEY)
        if not _online_grant_alive(self.server.services, record.scope, session):
            tokens.revoke_family(record.family)
            raise InvalidGrantError("The sign-in session of this online_access grant has ended.")
        requested = self.request.payload.scope
        scope = " ".join(parse_scopes(requested).raw) if requested else record.scope
        body = tokens.issue(client_id=record.client_id, user=user, scope=scope, context=record.context,
                            family=record.family, session=session)
        return 200, body, TOKEN_HEADERS


def _online_grant_alive(services: Any, scope: str, session: str | None) -> bool:
    """An ``online_access`` (not ``offline_access``) refresh works only while the user's session lasts."""
    scopes = parse_scopes(scope)
    if scopes.has("offline_access") or not scopes.has("online_access"):
        return True
    return bool(session) and services.store.get(f"session:{session}") is not None


class ClientCredentials(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["private_key_jwt"]

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("The client is not registered for backend services.")
        requested = self.request.payload.scope
        if not requested:
            raise InvalidRequestError("Missing 'scope'.")
        asked = parse_scopes(requested)
        if asked.unknown or any(r.context != "system" for r in asked.resources) or not asked.resources:
            raise InvalidScopeError("Backend services may ask only for system/ scopes.")
        granted = allowed_subset(requested, client.scope)
        if not granted:
            raise InvalidScopeError("None of the requested scopes is registered for this client.")
        self.request.client = client
        self.request.scope = " ".join(granted)

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client = self.request.client
        body = self.server.services.tokens.issue(client_id=client.get_client_id(), user=None,
                                                 scope=self.request.scope, refresh=False)
        return 200, body, TOKEN_HEADERS
