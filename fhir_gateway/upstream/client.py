"""One upstream FHIR call, done right: throttle, circuit breaker, bearer token, timeouts,
retries with back-off (``Retry-After`` honoured), one token refresh on 401, audit, and a
typed error for anything that is not FHIR JSON.

Non-idempotent calls (POST) are retried only when the vendor refused them outright (429);
after a timeout or a 5xx their outcome is unknown, so the error goes to the caller
(:mod:`.writes` checks by reading back before any second attempt).
"""
from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from fhir_gateway.upstream.audit import Auditor, UpstreamCall
from fhir_gateway.upstream.breaker import CircuitBreaker
from fhir_gateway.upstream.connection import Connection
from fhir_gateway.upstream.decode import decode
from fhir_gateway.upstream.errors import (
    UpstreamAuthError,
    UpstreamBadResponse,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from fhir_gateway.upstream.retry import RETRY_STATUSES, SAFE_FOR_WRITES, Backoff, retry_after
from fhir_gateway.upstream.throttle import Throttle
from fhir_gateway.upstream.tokens import TokenSource

log = logging.getLogger("telehub.upstream")
JSON = dict[str, Any]


@dataclass
class Reply:
    status: int
    body: JSON | None
    headers: dict[str, str]


class UpstreamClient:
    def __init__(self, connection: Connection, *, session: requests.Session, tokens: TokenSource,
                 throttle: Throttle, breaker: CircuitBreaker, auditor: Auditor,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 rng: Callable[[], float] = random.random) -> None:
        self.connection = connection
        self.profile = connection.profile
        self.session, self.tokens, self.throttle = session, tokens, throttle
        self.breaker, self.auditor = breaker, auditor
        self.clock, self.sleep = clock, sleep
        limits = self.profile.rate_limit
        self.backoff = Backoff(limits.backoff_base_s, limits.backoff_max_s, rng)
        self.timeout = (limits.connect_timeout_s, limits.read_timeout_s)
        self.calls = 0

    # -- the public calls -----------------------------------------------------------------------
    def read(self, resource_type: str, vendor_id: str, *, patient: str | None = None) -> JSON:
        reply = self.send("GET", self.connection.url(f"{resource_type}/{vendor_id}"), resource_type=resource_type,
                          patient=patient, params=self.tenancy_params() or None)
        if reply.body is None or reply.body.get("resourceType") != resource_type:
            raise UpstreamBadResponse(f"read {resource_type}: the answer is not a {resource_type}", status=reply.status)
        return reply.body

    def get(self, url: str, params: dict[str, str] | None, *, resource_type: str, patient: str | None = None,
            search: bool = False) -> JSON:
        reply = self.send("GET", url, params=params, resource_type=resource_type, patient=patient, search=search)
        if reply.body is None:
            raise UpstreamBadResponse(f"GET {resource_type}: empty body", status=reply.status)
        return reply.body

    def send(self, method: str, url: str, *, resource_type: str | None, params: dict[str, str] | None = None,
             body: JSON | list[Any] | None = None, patient: str | None = None, search: bool = False,
             headers: dict[str, str] | None = None) -> Reply:
        """One logical call with its retries; raises an :class:`UpstreamError` subclass on failure."""
        self._same_server(url)
        idempotent = method in ("GET", "HEAD", "PUT", "DELETE")
        what = f"{method} {resource_type or 'request'}"
        refreshed = False
        attempt = 0
        while True:
            self.breaker.before()
            self.throttle.acquire()
            status = 0
            try:
                response = self._http(method, url, params, body, headers)
            except requests.RequestException as exc:
                self.breaker.failure()
                self._audit(method, resource_type, 0, search, patient, url)
                log.warning("upstream %s %s: %s", self.connection.key, what, type(exc).__name__)
                if idempotent and attempt < self.profile.rate_limit.max_retries:
                    self.sleep(self.backoff.delay(attempt))
                    attempt += 1
                    continue
                raise UpstreamUnavailable(f"{what}: no answer ({type(exc).__name__})") from None
            status = response.status_code
            self._audit(method, resource_type, status, search, patient, url)
            if status == 401 and not refreshed:
                refreshed = True  # one refresh, then one retry; does not count as an attempt
                self.tokens.invalidate()
                continue
            if status == 401:
                raise UpstreamAuthError(f"{what}: HTTP 401 again after a fresh token", status=401)
            if status in RETRY_STATUSES:
                if status >= 500:
                    self.breaker.failure()
                wait = self._retry_wait(response, attempt, idempotent or status in SAFE_FOR_WRITES)
                if wait is not None:
                    self.sleep(wait)
                    attempt += 1
                    continue
                error = UpstreamRateLimited if status in (429, 503) else UpstreamUnavailable
                raise error(f"{what}: HTTP {status} after {attempt + 1} attempt(s)", status=status)
            elif status >= 500:
                self.breaker.failure()
            else:
                self.breaker.success()
            decoded = decode(response, self.profile, what)
            return Reply(status, decoded, {k.lower(): v for k, v in response.headers.items()})

    def tenancy_params(self) -> dict[str, str]:
        """The tenancy parameter (athena ``ah-practice``): the connection's practice, else the token's claim."""
        conn = self.connection
        if conn.profile.tenancy.style == "practice-param" and conn.practice is None:
            self.tokens.token()
            return conn.tenancy_params(getattr(self.tokens, "tenant_hint", None))
        return conn.tenancy_params()

    # -- helpers --------------------------------------------------------------------------------
    def _http(self, method: str, url: str, params: dict[str, str] | None, body: Any,
              headers: dict[str, str] | None) -> requests.Response:
        sent = {"Accept": self.profile.content.accept, **(headers or {})}
        token = self.tokens.token()
        if token:
            sent["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            import orjson

            data = orjson.dumps(body)
            sent.setdefault("Content-Type", self.profile.content.content_type)
        self.calls += 1
        started = self.clock()
        response = self.session.request(method, url, params=params, data=data, headers=sent, timeout=self.timeout,
                                        allow_redirects=False)
        log.debug("upstream %s %s -> %s in %.0f ms", self.connection.key, method, response.status_code,
                  (self.clock() - started) * 1000)
        return response

    def _retry_wait(self, response: requests.Response, attempt: int, may_retry: bool) -> float | None:
        """Seconds to wait before the next attempt, or None to stop retrying (then the error is raised)."""
        limits = self.profile.rate_limit
        if not may_retry or attempt >= limits.max_retries:
            return None
        hinted = retry_after(response.headers.get("Retry-After"), self.clock()) if limits.retry_after_header else None
        if hinted is not None:
            if hinted > limits.backoff_max_s * 4:
                raise UpstreamRateLimited(f"the EHR asks to wait {hinted:.0f}s (Retry-After); not waiting that long",
                                          status=response.status_code)
            return hinted
        return self.backoff.delay(attempt)

    def _same_server(self, url: str) -> None:
        """Never send the bearer token anywhere but the connection's own server (next links are followed)."""
        base, target = urlsplit(self.connection.fhir_base), urlsplit(url)
        if (target.scheme, target.netloc) != (base.scheme, base.netloc):
            raise UpstreamBadResponse("a link points outside the EHR's FHIR server; not followed")

    def _audit(self, method: str, resource_type: str | None, status: int, search: bool, patient: str | None,
               url: str) -> None:
        self.auditor.record(UpstreamCall(self.profile.name, self.connection.tenant, method, resource_type, status,
                                         search, patient, url))
