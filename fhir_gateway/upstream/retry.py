"""When to retry an upstream call and how long to wait: exponential back-off with jitter,
``Retry-After`` honoured (RFC 9110 §10.2.3: seconds or an HTTP date)."""
from __future__ import annotations

from collections.abc import Callable
from email.utils import parsedate_to_datetime

RETRY_STATUSES = frozenset({429, 502, 503, 504})
SAFE_FOR_WRITES = frozenset({429})  # the request was refused, not processed: a retry cannot duplicate


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, or None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class Backoff:
    """``base * 2**attempt`` capped at ``cap``, with "equal jitter" (half fixed, half random)."""

    def __init__(self, base: float, cap: float, rng: Callable[[], float]) -> None:
        self.base, self.cap, self.rng = base, cap, rng

    def delay(self, attempt: int) -> float:
        ceiling: float = min(self.cap, self.base * 2.0 ** attempt)
        return ceiling / 2 + self.rng() * ceiling / 2
