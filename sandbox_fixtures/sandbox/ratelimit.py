"""Imitated vendor throttling: 429 with ``Retry-After`` at a configurable rate, so adapters meet it offline.

Two knobs per flavour (flavours.toml ``rate_limit``): ``every`` — each Nth request is refused
(deterministic, for tests) — and ``per_second``/``burst`` — a token bucket (for benchmarks).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sandbox_fixtures.sandbox.flavours import RateLimit


class Throttle:
    """One per flavour; :meth:`check` returns the seconds to wait (0: go ahead)."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self._count = 0
        self._tokens = float(limit.burst or 1)
        self._last = clock()
        self._lock = threading.Lock()

    def check(self) -> int:
        limit = self.limit
        if not limit.enabled:
            return 0
        with self._lock:
            self._count += 1
            if limit.every and self._count % limit.every == 0:
                return limit.retry_after
            if limit.per_second:
                now = self.clock()
                self._tokens = min(float(limit.burst or 1), self._tokens + (now - self._last) * limit.per_second)
                self._last = now
                if self._tokens < 1:
                    return max(limit.retry_after, 1)
                self._tokens -= 1
        return 0
