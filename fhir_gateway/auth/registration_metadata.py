"""Client metadata of a dynamic registration (RFC 7591 §2), validated sans-IO with the errors of §3.2.2.

The SMART rules this server already applies to operator-registered clients hold here too:
``client_credentials`` is for ``private_key_jwt`` clients only (backend services), redirect-based
clients must register exact redirect URIs, and a client never holds a scope the initial access
token's ceiling does not cover. RFC 7591 §3.2.1 lets the server replace requested values, so
scopes are *narrowed* (to the ceiling and to what the grants can use) and the response says what
was granted; malformed metadata is refused.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from joserfc.jwk import KeySet

from fhir_gateway.auth.clients import ASYMMETRIC, PUBLIC, SYMMETRIC
from fhir_gateway.auth.scopes import ScopeSyntaxError, allowed_subset, parse_scope, parse_scopes

INVALID_METADATA, INVALID_REDIRECT = "invalid_client_metadata", "invalid_redirect_uri"
AUTH_METHOD_TYPES = {"none": PUBLIC, "client_secret_basic": SYMMETRIC, "client_secret_post": SYMMETRIC,
                     "private_key_jwt": ASYMMETRIC}
GRANTS = ("authorization_code", "refresh_token", "client_credentials")
LOOPBACK = {"localhost", "127.0.0.1", "::1"}
PRIVATE_KEY_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
TEXT_FIELDS = ("client_name", "software_id", "software_version")
URL_FIELDS = ("client_uri", "logo_uri", "tos_uri", "policy_uri")
MAX_URIS, MAX_TEXT, MAX_URL = 20, 255, 2000
# scopes each grant can make use of (anything else is dropped from the registration)
USER_SPECIAL = {"openid", "fhirUser", "profile", "launch", "launch/patient", "launch/encounter", "online_access"}


class RegistrationError(ValueError):
    """Metadata refused; ``error`` is the RFC 7591 §3.2.2 code."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class ClientMetadata:
    """What will be registered (after defaults and narrowing), ready for :class:`~.clients.ClientStore`."""

    auth_method: str
    redirect_uris: list[str]
    grant_types: list[str]
    response_types: list[str]
    scope: str
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # client_name, software_id, contacts, *_uri

    @property
    def client_type(self) -> str:
        return AUTH_METHOD_TYPES[self.auth_method]


def _fail(description: str, error: str = INVALID_METADATA) -> RegistrationError:
    return RegistrationError(error, description)


def _strings(body: dict[str, Any], name: str, default: list[str]) -> list[str]:
    value = body.get(name, default)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(f"'{name}' must be an array of strings")
    return list(dict.fromkeys(value))


def _text(body: dict[str, Any], name: str, limit: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise _fail(f"'{name}' must be a non-empty string of at most {limit} characters")
    return value


def check_redirect_uri(uri: str) -> None:
    """https, or http on a loopback host (RFC 8252 §7.3); absolute, no fragment (RFC 6749 §3.1.2)."""
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError:
        host = None
    if len(uri) > MAX_URL or any(c.isspace() for c in uri) or not host:
        raise _fail(f"redirect URI {uri!r} is not an absolute URL", INVALID_REDIRECT)
    if parts.fragment or "#" in uri:
        raise _fail(f"redirect URI {uri!r} must not have a fragment", INVALID_REDIRECT)
    if parts.scheme == "http" and host in LOOPBACK:
        return
    if parts.scheme != "https":
        raise _fail(f"redirect URI {uri!r} must use https (http only for localhost)", INVALID_REDIRECT)


def _check_https_url(name: str, url: str) -> None:
    """A URL the server may fetch or show: https, not an IP literal inside this network (SSRF)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
    if not host or parts.scheme != "https" or len(url) > MAX_URL or parts.fragment:
        raise _fail(f"'{name}' must be an https URL")
    if host.lower() in LOOPBACK:
        raise _fail(f"'{name}' must not point to a private or loopback address")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return
    if not ip.is_global:
        raise _fail(f"'{name}' must not point to a private or loopback address")


def _check_jwks(jwks: Any) -> dict[str, Any]:
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise _fail("'jwks' must be a JWK Set with at least one key")
    for key in jwks["keys"]:
        if not isinstance(key, dict) or key.get("kty") not in ("RSA", "EC"):
            raise _fail("'jwks' may hold only RSA or EC public keys")
        if PRIVATE_KEY_MEMBERS & set(key):
            raise _fail("'jwks' must hold public keys only (private key material was sent)")
    try:
        KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    except Exception as exc:
        raise _fail(f"'jwks' is not a valid JWK Set: {exc}") from exc
    return jwks


def _grants(body: dict[str, Any], auth_method: str) -> tuple[list[str], list[str]]:
    """grant_types and response_types, consistent with each other (RFC 7591 §2.1) and with SMART."""
    grants = _strings(body, "grant_types", ["authorization_code"])
    unknown = [g for g in grants if g not in GRANTS]
    if unknown or not grants:
        raise _fail(f"unsupported grant_types {unknown}; supported: {', '.join(GRANTS)}" if unknown
                    else "'grant_types' must not be empty")
    code = "authorization_code" in grants
    if "refresh_token" in grants and not code:
        raise _fail("'refresh_token' is only issued with 'authorization_code'")
    if "client_credentials" in grants and auth_method != "private_key_jwt":
        raise _fail("'client_credentials' (SMART backend services) needs token_endpoint_auth_method "
                    "'private_key_jwt'")
    responses = _strings(body, "response_types", ["code"] if code else [])
    if responses != (["code"] if code else []):
        raise _fail("'response_types' must be [\"code\"] with the 'authorization_code' grant, and empty without it")
    return grants, responses


def _usable(token: str, grants: list[str]) -> bool:
    """Can a client with these grants ever be issued this scope?"""
    code, backend = "authorization_code" in grants, "client_credentials" in grants
    if token == "offline_access":
        return "refresh_token" in grants
    if token == "launch" and backend:
        return True  # backend services create EHR launches (POST /auth/launch)
    if token in USER_SPECIAL:
        return code
    parsed = parse_scope(token)
    if parsed is None:
        return False
    return backend if parsed.context == "system" else code


def _scope(body: dict[str, Any], grants: list[str], ceiling: str | None) -> str:
    requested = body.get("scope")
    if requested is not None and not isinstance(requested, str):
        raise _fail("'scope' must be a space-separated string")
    if requested is None:
        if ceiling is None:
            raise _fail("'scope' is required")
        requested = ceiling
    try:
        asked = parse_scopes(requested, strict=True)
    except ScopeSyntaxError as exc:
        raise _fail(f"invalid scope: {exc}") from exc
    within = allowed_subset(" ".join(asked.raw), ceiling) if ceiling is not None else list(asked.raw)
    granted = [t for t in within if _usable(t, grants)]
    if not granted:
        raise _fail("none of the requested scopes may be registered with this initial access token and these "
                    "grant_types")
    return " ".join(granted)


def _extra(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        if (text := _text(body, name, MAX_TEXT)) is not None:
            out[name] = text
    for name in URL_FIELDS:
        if (url := _text(body, name, MAX_URL)) is not None:
            _check_https_url(name, url)
            out[name] = url
    if "contacts" in body:
        contacts = _strings(body, "contacts", [])
        if len(contacts) > 10 or any(len(c) > MAX_TEXT for c in contacts):
            raise _fail("'contacts' may list at most 10 short strings")
        out["contacts"] = contacts
    return out


def validate_metadata(body: dict[str, Any], ceiling: str | None) -> ClientMetadata:
    """Defaults of RFC 7591 §2 (``client_secret_basic``, ``authorization_code``, ``code``), then the checks."""
    auth_method = body.get("token_endpoint_auth_method", "client_secret_basic")
    if not isinstance(auth_method, str) or auth_method not in AUTH_METHOD_TYPES:
        raise _fail(f"unsupported token_endpoint_auth_method; supported: {', '.join(AUTH_METHOD_TYPES)}")
    grants, responses = _grants(body, auth_method)
    redirect_uris = _strings(body, "redirect_uris", [])
    if len(redirect_uris) > MAX_URIS:
        raise _fail(f"at most {MAX_URIS} redirect URIs", INVALID_REDIRECT)
    for uri in redirect_uris:
        check_redirect_uri(uri)
    if "authorization_code" in grants and not redirect_uris:
        raise _fail("'redirect_uris' is required for the 'authorization_code' grant", INVALID_REDIRECT)
    jwks, jwks_uri = body.get("jwks"), body.get("jwks_uri")
    if jwks is not None and jwks_uri is not None:
        raise _fail("'jwks' and 'jwks_uri' must not both be present")
    if auth_method == "private_key_jwt":
        if jwks is None and jwks_uri is None:
            raise _fail("'private_key_jwt' needs 'jwks' or 'jwks_uri'")
    elif jwks is not None or jwks_uri is not None:
        raise _fail("'jwks'/'jwks_uri' are only for token_endpoint_auth_method 'private_key_jwt'")
    if jwks is not None:
        jwks = _check_jwks(jwks)
    if jwks_uri is not None:
        if not isinstance(jwks_uri, str):
            raise _fail("'jwks_uri' must be a string")
        _check_https_url("jwks_uri", jwks_uri)
    return ClientMetadata(auth_method=auth_method, redirect_uris=redirect_uris, grant_types=grants,
                          response_types=responses, scope=_scope(body, grants, ceiling), jwks=jwks,
                          jwks_uri=jwks_uri, extra=_extra(body))
