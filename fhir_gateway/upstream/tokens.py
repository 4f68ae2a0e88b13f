"""Upstream access tokens: acquired per the profile's auth style, cached, refreshed before expiry.

The cache is the hub's ephemeral store (:mod:`fhir_gateway.auth.store`): Redis when configured, so
every worker shares one token per connection, in-process otherwise. A cached token is used until
``refresh_margin_s`` before it expires; :meth:`TokenProvider.invalidate` drops it after a 401.
Token values never reach logs or exceptions.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

import requests

from fhir_gateway.auth.store import EphemeralStore
from fhir_gateway.upstream.assertion import ASSERTION_TYPE, client_assertion, load_private_key
from fhir_gateway.upstream.connection import Connection
from fhir_gateway.upstream.errors import UpstreamAuthError, UpstreamConfigError
from vendor_profiles.hooks import hooks_for

log = logging.getLogger("telehub.upstream")


class TokenSource(Protocol):
    def token(self) -> str | None: ...

    def invalidate(self) -> None: ...


class TokenProvider:
    """One connection's system token. ``token_url`` may come from discovery (``discover``)."""

    def __init__(self, connection: Connection, store: EphemeralStore, session: requests.Session,
                 clock: Callable[[], float], discover: Callable[[], str | None] | None = None,
                 timeout: float = 10.0) -> None:
        self.connection = connection
        self.store = store
        self.session = session
        self.clock = clock
        self.discover = discover
        self.timeout = timeout
        self.tenant_hint: str | None = None
        self._lock = threading.Lock()
        self.acquired = 0  # how many times a token was fetched (tests, metrics)

    @property
    def _key(self) -> str:
        return f"token:{self.connection.key}"

    def token(self) -> str | None:
        """A valid access token (None when the profile needs no auth)."""
        if self.connection.profile.auth.style == "none":
            return None
        cached = self.store.get(self._key)
        margin = self.connection.profile.tokens.refresh_margin_s
        if cached and float(cached["expires_at"]) - margin > self.clock():
            return self._use(cached)
        with self._lock:
            cached = self.store.get(self._key)
            if cached and float(cached["expires_at"]) - margin > self.clock():
                return self._use(cached)
            return self._acquire()

    def _use(self, cached: dict[str, Any]) -> str:
        hint = cached.get("tenant_hint")
        self.tenant_hint = hint if isinstance(hint, str) else None
        return str(cached["access_token"])

    def invalidate(self) -> None:
        self.store.delete(self._key)

    def granted(self) -> str | None:
        """The scope string of the cached token (what the vendor actually granted)."""
        cached = self.store.get(self._key)
        return None if cached is None else str(cached.get("scope", ""))

    def _token_url(self) -> str:
        url = self.connection.resolved_token_url() or (self.discover() if self.discover else None)
        if not url:
            raise UpstreamConfigError("no token endpoint: set token_url or let discovery find it")
        return url

    def _form(self, token_url: str) -> tuple[dict[str, str], tuple[str, str] | None]:
        conn, auth = self.connection, self.connection.profile.auth
        if not conn.client_id:
            raise UpstreamConfigError(f"connection {conn.tenant} has no client_id")
        form: dict[str, str] = {"grant_type": auth.grant_type}
        scopes = conn.scope_list()
        if scopes:
            form["scope"] = " ".join(scopes)
        elif conn.profile.scopes.explicit_required:
            raise UpstreamConfigError(f"{conn.profile.name} needs explicit scopes; none are configured")
        basic: tuple[str, str] | None = None
        if auth.client_auth == "private_key_jwt":
            if conn.private_key is None:
                raise UpstreamConfigError(f"connection {conn.tenant} needs private_key for private_key_jwt")
            key = load_private_key(conn.private_key.reveal(), auth.assertion_alg or "RS384")
            form["client_assertion_type"] = ASSERTION_TYPE
            form["client_assertion"] = client_assertion(auth, client_id=conn.client_id, token_url=token_url, key=key,
                                                        now=self.clock(), kid=conn.key_id, jku=conn.jku)
        elif auth.client_auth in ("client_secret_basic", "client_secret_post"):
            if conn.client_secret is None:
                raise UpstreamConfigError(f"connection {conn.tenant} needs client_secret")
            secret = conn.client_secret.reveal()
            if auth.client_auth == "client_secret_basic":
                basic = (conn.client_id, secret)
            else:
                form.update(client_id=conn.client_id, client_secret=secret)
        return form, basic

    def _acquire(self) -> str:
        token_url = self._token_url()
        form, basic = self._form(token_url)
        try:
            response = self.session.post(token_url, data=form, auth=basic, timeout=self.timeout,
                                         headers={"Accept": "application/json"})
        except requests.RequestException as exc:
            raise UpstreamAuthError(f"token endpoint unreachable: {type(exc).__name__}") from None
        body = _json_or_none(response)
        if response.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
            raise UpstreamAuthError(_token_error(response.status_code, body), status=response.status_code)
        self.acquired += 1
        profile = self.connection.profile
        lifetime = body.get("expires_in")
        seconds = int(lifetime) if isinstance(lifetime, int | str) and str(lifetime).isdigit() else \
            profile.tokens.lifetime_s
        self.tenant_hint = hooks_for(profile.hooks).tenant_from_token(body)
        self.store.put(self._key, {"access_token": body["access_token"], "expires_at": self.clock() + seconds,
                                   "scope": body.get("scope", ""), "tenant_hint": self.tenant_hint},
                       ttl=max(1, seconds))
        self._warn_dropped(str(body.get("scope", "")))
        log.info("upstream token acquired for %s (expires in %ss)", self.connection.key, seconds)
        return str(body["access_token"])


    def _warn_dropped(self, granted: str) -> None:
        from fhir_gateway.upstream.scopes import compare

        requested = self.connection.scope_list()
        if requested and granted:
            report = compare(self.connection.profile, requested, granted)
            if not report.ok:
                log.warning("upstream %s: %s", self.connection.key, report.advice())


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _token_error(status: int, body: Any) -> str:
    """The OAuth error code (and Cerner's ``error_uri``, which the vendor asks apps to show)."""
    if isinstance(body, dict) and body.get("error"):
        text = f"token request refused ({status}): {body['error']}"
        if isinstance(body.get("error_uri"), str):
            text += f" — see {body['error_uri'].split('?')[0]}"
        return text
    return f"token request failed with HTTP {status}"
