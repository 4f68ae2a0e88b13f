"""SMART App Launch 2.x authorization server (Authlib), as a Flask blueprint.

Wiring (in ``create_app``)::

    from fhir_gateway.auth import init_app as init_auth
    auth = init_auth(app, settings, engine)          # mounts under the FHIR base path (/fhir)
    claims = auth.tokens.verify(bearer)              # or verify_access_token(app, bearer)

See :func:`init_app` for the optional collaborators (key provider, store, MFA).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from flask import Flask
from sqlalchemy import Engine

from fhir_gateway.auth import ratelimit
from fhir_gateway.auth import tables as tables
from fhir_gateway.auth.clients import ClientStore
from fhir_gateway.auth.errors import AuthConfigError, AuthError, InsufficientScopeError, InvalidTokenError
from fhir_gateway.auth.keys import KeyProvider, SigningKeys, default_key_provider
from fhir_gateway.auth.mfa import TotpMfa
from fhir_gateway.auth.registration import make_registration_blueprint
from fhir_gateway.auth.scopes import Interaction, ScopeSet, parse_scopes
from fhir_gateway.auth.server import AuthServices, SmartAuthorizationServer, build_server
from fhir_gateway.auth.store import EphemeralStore, make_store
from fhir_gateway.auth.tokens import BACKEND_LIFETIME, USER_LIFETIME, TokenClaims, TokenService
from fhir_gateway.auth.users import MfaVerifier, UserStore
from fhir_gateway.auth.views import EXT, make_blueprint

__all__ = ["AuthConfigError", "AuthError", "AuthServices", "InsufficientScopeError", "Interaction",
           "InvalidTokenError", "ScopeSet", "TokenClaims", "build_services", "init_app", "parse_scopes",
           "verify_access_token"]


class _ScrubTokens(logging.Filter):
    """Authlib logs whole tokens at DEBUG; drop those records (STYLE: secrets never reach logs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno <= logging.DEBUG and "token" in str(record.msg).lower())


def build_services(settings: Any, engine: Engine, *, key_provider: KeyProvider | None = None,
                   store: EphemeralStore | None = None, mfa: MfaVerifier | None = None,
                   fetch_jwks: Callable[[str], tuple[dict[str, Any], int]] | None = None,
                   ensure_keys: bool = True) -> AuthServices:
    """Build the auth services without Flask (the CLI uses this too)."""
    issuer = settings.fhir_base
    provider = key_provider or default_key_provider(getattr(settings, "kek_file", None), settings.env)
    keys = SigningKeys(engine, provider)
    if ensure_keys:
        keys.ensure()
    users = UserStore(engine, provider)  # the provider also seals TOTP secrets
    store = store or make_store(getattr(settings, "redis_url", None))
    tokens = TokenService(engine, keys, users, issuer,
                          user_lifetime=getattr(settings, "token_lifetime_user", USER_LIFETIME),
                          backend_lifetime=getattr(settings, "token_lifetime_backend", BACKEND_LIFETIME))
    return AuthServices(engine=engine, issuer=issuer, clients=ClientStore(engine, fetch_jwks), users=users,
                        keys=keys, tokens=tokens, store=store, mfa=mfa or TotpMfa(users))


def init_app(app: Flask, settings: Any, engine: Engine, *, key_provider: KeyProvider | None = None,
             store: EphemeralStore | None = None, mfa: MfaVerifier | None = None,
             fetch_jwks: Callable[[str], tuple[dict[str, Any], int]] | None = None) -> AuthServices:
    """Attach the authorization server to ``app`` under the FHIR base path; the schema must be migrated (0004).

    ``key_provider`` returns the secret protecting the signing keys (default: TELEHUB_KEK_FILE's bytes;
    a development secret outside prod). ``store`` holds launches, sessions and the ``jti`` replay cache
    (default: Redis when ``settings.redis_url``, else in-process).
    """
    services = build_services(settings, engine, key_provider=key_provider, store=store, mfa=mfa,
                              fetch_jwks=fetch_jwks)
    server = build_server(services)
    app.extensions[EXT] = server
    prefix = urlparse(settings.fhir_base).path.rstrip("/")
    app.register_blueprint(make_blueprint(), url_prefix=prefix or None)
    ratelimit.init_app(app, getattr(settings, "redis_url", None))  # login and token rate limits
    app.register_blueprint(make_registration_blueprint(), url_prefix=prefix or None)  # RFC 7591/7592
    logging.getLogger("authlib").addFilter(_ScrubTokens())
    return services


def verify_access_token(token: str, app: Flask | None = None) -> TokenClaims:
    """Verify a bearer token for the FHIR server; raises :class:`InvalidTokenError` (→ 401)."""
    from flask import current_app

    server: SmartAuthorizationServer = (app or current_app).extensions[EXT]
    return server.services.tokens.verify(token)
