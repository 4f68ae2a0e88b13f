"""Wiring one connection's client: token cache and bucket in Redis when configured, else in-process.

Everything time- or chance-dependent (clock, sleep, random) is injectable so tests never sleep.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import requests

from fhir_gateway.auth.store import EphemeralStore, MemoryStore, RedisStore
from fhir_gateway.upstream.audit import Auditor, MemoryAuditor
from fhir_gateway.upstream.breaker import CircuitBreaker
from fhir_gateway.upstream.client import UpstreamClient
from fhir_gateway.upstream.connection import Connection
from fhir_gateway.upstream.discovery import token_endpoint
from fhir_gateway.upstream.throttle import Throttle, make_bucket
from fhir_gateway.upstream.tokens import TokenProvider

DEFAULT_PREFIX = "telehub:upstream:"


def build_client(connection: Connection, *, redis_client: Any | None = None, prefix: str = DEFAULT_PREFIX,
                 auditor: Auditor | None = None, session: requests.Session | None = None,
                 store: EphemeralStore | None = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep,
                 rng: Callable[[], float] = random.random) -> UpstreamClient:
    session = session or requests.Session()
    if store is None:
        store = RedisStore(redis_client, prefix) if redis_client is not None else MemoryStore(clock)
    tokens = TokenProvider(connection, store, session, clock, discover=lambda: token_endpoint(session, connection))
    limits = connection.profile.rate_limit
    throttle = Throttle(make_bucket(limits, redis_client, prefix), connection.key, clock, sleep)
    breaker = CircuitBreaker(limits.breaker_failures, limits.breaker_reset_s, clock)
    return UpstreamClient(connection, session=session, tokens=tokens, throttle=throttle, breaker=breaker,
                          auditor=auditor or MemoryAuditor(), clock=clock, sleep=sleep, rng=rng)
