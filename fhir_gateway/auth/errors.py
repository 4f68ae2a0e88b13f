"""Errors of the authorization server.

OAuth protocol errors are Authlib's classes (``authlib.oauth2.rfc6749.errors``),
each carrying its ``error`` code and status. Errors for callers inside Telehub::

    AuthError
    ├── InvalidTokenError      bearer token missing, malformed, expired, revoked → 401
    ├── InsufficientScopeError token valid but does not permit the request → 403
    └── AuthConfigError        start-up misconfiguration (never at request time)
"""
from __future__ import annotations


class AuthError(Exception):
    """Base of Telehub's own auth errors."""

    status_code = 500
    error = "server_error"


class InvalidTokenError(AuthError):
    """The bearer token cannot be used: render 401 with ``WWW-Authenticate: Bearer error="invalid_token"``."""

    status_code = 401
    error = "invalid_token"


class InsufficientScopeError(AuthError):
    status_code = 403
    error = "insufficient_scope"


class AuthConfigError(AuthError):
    """The auth server is misconfigured (raised at start-up)."""
