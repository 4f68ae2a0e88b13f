"""Registered clients (RFC 6749 §2) and their storage, with the programmatic API the CLI uses.

Three kinds, per SMART App Launch "client authentication":

* ``public`` — no secret; ``token_endpoint_auth_method = none``; PKCE is its proof.
* ``symmetric`` — confidential, ``client_secret_basic``/``client_secret_post``; only a scrypt hash is stored.
* ``asymmetric`` — confidential, ``private_key_jwt`` (RFC 7523) with a JWKS or a JWKS URL; RS384/ES384.
"""
from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin
from joserfc.jwk import KeySet
from sqlalchemy import Engine, delete, insert, select, update

from fhir_gateway.auth.passwords import hash_secret, verify_secret
from fhir_gateway.auth.tables import auth_client

PUBLIC, SYMMETRIC, ASYMMETRIC = "public", "symmetric", "asymmetric"
AUTH_METHODS = {PUBLIC: ("none",), SYMMETRIC: ("client_secret_basic", "client_secret_post"),
                ASYMMETRIC: ("private_key_jwt",)}
USER_GRANTS = ["authorization_code", "refresh_token"]


class ClientError(ValueError):
    """A client registration is invalid (CLI and API callers)."""


@dataclass
class Client(ClientMixin):  # type: ignore[misc]
    client_id: str
    client_type: str
    redirect_uris: list[str]
    scope: str
    grant_types: list[str]
    name: str | None = None
    secret_hash: str | None = field(default=None, repr=False)
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    launch_uri: str | None = None
    disabled: bool = False

    # -- Authlib ClientMixin
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str) -> str:
        from fhir_gateway.auth.scopes import allowed_subset

        return " ".join(allowed_subset(scope, self.scope))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # exact match, per SMART and OAuth 2.1

    def check_client_secret(self, client_secret: str) -> bool:
        return self.client_type == SYMMETRIC and verify_secret(client_secret, self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return not self.disabled and method in AUTH_METHODS[self.client_type]

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types

    @property
    def is_public(self) -> bool:
        return self.client_type == PUBLIC

    def as_dict(self) -> dict[str, Any]:
        return {"client_id": self.client_id, "name": self.name, "type": self.client_type,
                "redirect_uris": self.redirect_uris, "scope": self.scope, "grant_types": self.grant_types,
                "jwks_uri": self.jwks_uri, "has_jwks": self.jwks is not None, "launch_uri": self.launch_uri,
                "disabled": self.disabled}


def _row_to_client(row: Any) -> Client:
    return Client(client_id=row.client_id, client_type=row.client_type,
                  redirect_uris=json.loads(row.redirect_uris), scope=row.scope,
                  grant_types=json.loads(row.grant_types), name=row.name, secret_hash=row.secret_hash,
                  jwks=json.loads(row.jwks) if row.jwks else None, jwks_uri=row.jwks_uri,
                  launch_uri=row.launch_uri, disabled=bool(row.disabled))


class ClientStore:
    """Add, list, get and remove clients. ``fetch_jwks`` fetches a JWKS URL (injected for tests)."""

    def __init__(self, engine: Engine, fetch_jwks: Callable[[str], tuple[dict[str, Any], int]] | None = None) -> None:
        self.engine = engine
        self._fetch = fetch_jwks or fetch_jwks_http
        self._jwks_cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def add(self, client_id: str, *, client_type: str, redirect_uris: list[str] | tuple[str, ...] = (),
            scope: str = "", secret: str | None = None, jwks: dict[str, Any] | None = None,
            jwks_uri: str | None = None, launch_uri: str | None = None, name: str | None = None,
            grant_types: list[str] | None = None) -> Client:
        if client_type not in AUTH_METHODS:
            raise ClientError(f"client type must be one of {', '.join(AUTH_METHODS)}")
        if client_type == SYMMETRIC and not secret:
            raise ClientError("a confidential-symmetric client needs a secret")
        if client_type == ASYMMETRIC:
            if not (jwks or jwks_uri) or (jwks and jwks_uri):
                raise ClientError("a confidential-asymmetric client needs exactly one of a JWKS or a JWKS URL")
            if jwks is not None:
                try:
                    KeySet.import_key_set(jwks)  # type: ignore[arg-type]
                except Exception as exc:
                    raise ClientError(f"invalid JWKS: {exc}") from exc
        if client_type != ASYMMETRIC and (jwks or jwks_uri):
            raise ClientError("only confidential-asymmetric clients have keys")
        if grant_types is None:
            grant_types = list(USER_GRANTS) if redirect_uris else []
            if client_type == ASYMMETRIC and any(s.startswith("system/") for s in scope.split()):
                grant_types.append("client_credentials")
        if "authorization_code" in grant_types and not redirect_uris:
            raise ClientError("a client using authorization_code needs at least one redirect URI")
        if "client_credentials" in grant_types and client_type != ASYMMETRIC:
            raise ClientError("backend services (client_credentials) need a confidential-asymmetric client")
        with self.engine.begin() as conn:
            if conn.execute(select(auth_client.c.client_id).where(auth_client.c.client_id == client_id)).first():
                raise ClientError(f"client {client_id!r} already exists")
            conn.execute(insert(auth_client).values(
                client_id=client_id, name=name, client_type=client_type,
                secret_hash=hash_secret(secret) if secret else None,
                jwks=json.dumps(jwks) if jwks else None, jwks_uri=jwks_uri,
                redirect_uris=json.dumps(list(redirect_uris)), grant_types=json.dumps(grant_types),
                scope=scope, launch_uri=launch_uri, created=int(time.time()), disabled=False))
        found = self.get(client_id)
        assert found is not None
        return found

    def get(self, client_id: str) -> Client | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(auth_client).where(auth_client.c.client_id == client_id)).first()
        return _row_to_client(row) if row else None

    def query(self, client_id: str) -> Client | None:
        """Authlib's ``query_client``: disabled clients do not exist for the protocol."""
        client = self.get(client_id)
        return client if client and not client.disabled else None

    def list(self) -> list[Client]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(auth_client).order_by(auth_client.c.client_id)).all()
        return [_row_to_client(r) for r in rows]

    def remove(self, client_id: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(delete(auth_client).where(auth_client.c.client_id == client_id)).rowcount > 0

    def disable(self, client_id: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(update(auth_client).where(auth_client.c.client_id == client_id)
                                .values(disabled=True)).rowcount > 0

    def public_keys(self, client: Client) -> KeySet:
        """The client's verification keys; a JWKS URL is cached as long as its ``Cache-Control`` allows."""
        if client.jwks is not None:
            return KeySet.import_key_set(client.jwks)  # type: ignore[arg-type]
        if not client.jwks_uri:
            raise ClientError("client has no keys")
        now = time.time()
        with self._lock:
            cached = self._jwks_cache.get(client.jwks_uri)
        if cached and cached[0] > now:
            return KeySet.import_key_set(cached[1])  # type: ignore[arg-type]
        data, max_age = self._fetch(client.jwks_uri)
        with self._lock:
            self._jwks_cache[client.jwks_uri] = (now + max_age, data)
        return KeySet.import_key_set(data)  # type: ignore[arg-type]


def fetch_jwks_http(url: str) -> tuple[dict[str, Any], int]:
    """GET a JWKS; returns it with the seconds it may be cached (``max-age``, 0 with ``no-store``/``no-cache``)."""
    import requests

    resp = requests.get(url, timeout=5, headers={"Accept": "application/json"})
    resp.raise_for_status()
    max_age = 300
    cc = resp.headers.get("Cache-Control", "")
    for part in (p.strip().lower() for p in cc.split(",")):
        if part in ("no-store", "no-cache"):
            max_age = 0
        elif part.startswith("max-age="):
            with contextlib.suppress(ValueError):
                max_age = min(int(part[8:]), 3600)
    data: dict[str, Any] = resp.json()
    return data, max_age


def generate_secret() -> str:
    return secrets.token_urlsafe(32)
