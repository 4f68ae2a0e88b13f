"""A circuit breaker per connection: stop calling an EHR that keeps failing, try again later.

Closed → (``failures`` consecutive server failures) → open for ``reset_s`` → half-open (one trial
call) → closed on success, open again on failure. Client errors (4xx) are answers, not failures.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

from fhir_gateway.upstream.errors import UpstreamUnavailable


class CircuitBreaker:
    def __init__(self, failures: int, reset_s: float, clock: Callable[[], float]) -> None:
        self.threshold, self.reset_s, self.clock = failures, reset_s, clock
        self.failures = 0
        self.opened_at: float | None = None
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.clock() - self.opened_at >= self.reset_s else "open"

    def before(self) -> None:
        """Raise :class:`UpstreamUnavailable` while open."""
        if self.state == "open":
            raise UpstreamUnavailable("the EHR is failing repeatedly; calls are paused (circuit open)")

    def success(self) -> None:
        with self._lock:
            self.failures, self.opened_at = 0, None

    def failure(self) -> None:
        with self._lock:
            self.failures += 1
            if self.failures >= self.threshold or self.opened_at is not None:
                self.opened_at = self.clock()
