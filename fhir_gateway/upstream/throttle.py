"""Self-throttling: a token bucket per connection, shared by every worker through Redis.

Each call takes one token; tokens refill at the profile's ``requests_per_second`` up to ``burst``.
Redis runs the whole check-and-take as one Lua script (atomic across workers); without Redis an
in-process bucket does the same for one worker. The clock is passed in, so tests never sleep.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from vendor_profiles.schema import RateLimitSpec

EPSILON = 1e-9  # float slack: a bucket refilled to 0.999999999 has a token
MIN_WAIT = 0.001  # never ask for a wait so small that adding it to the clock changes nothing


class Bucket(Protocol):
    def take(self, key: str, now: float) -> float:
        """Take one token: 0.0 when taken, else the seconds to wait before asking again."""
        ...


class MemoryBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float) -> float:
        with self._lock:
            tokens, stamp = self._state.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + max(0.0, now - stamp) * self.rate)
            if tokens >= 1.0 - EPSILON:
                self._state[key] = (max(0.0, tokens - 1.0), now)
                return 0.0
            self._state[key] = (tokens, now)
            return max(MIN_WAIT, (1.0 - tokens) / self.rate)


_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local tokens = tonumber(redis.call('HGET', KEYS[1], 't'))
local stamp = tonumber(redis.call('HGET', KEYS[1], 's'))
if tokens == nil or stamp == nil then tokens = burst; stamp = now end
local elapsed = now - stamp
if elapsed < 0 then elapsed = 0 end
tokens = math.min(burst, tokens + elapsed * rate)
local wait = 0
if tokens >= 1 - 1e-9 then tokens = math.max(0, tokens - 1) else wait = math.max(0.001, (1 - tokens) / rate) end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 's', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 60000)
return tostring(wait)
"""


class RedisBucket:
    def __init__(self, client: Any, rate: float, burst: int, prefix: str = "telehub:upstream:") -> None:
        self.rate, self.burst = rate, burst
        self._prefix = prefix
        self._script = client.register_script(_TAKE)

    def take(self, key: str, now: float) -> float:
        return float(self._script(keys=[f"{self._prefix}bucket:{key}"], args=[self.rate, self.burst, repr(now)]))


class Throttle:
    """Blocks (with the injected ``sleep``) until the connection's bucket gives a token."""

    def __init__(self, bucket: Bucket, key: str, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self.bucket, self.key, self.clock, self.sleep = bucket, key, clock, sleep
        self.waited = 0.0

    def acquire(self) -> None:
        while True:
            wait = self.bucket.take(self.key, self.clock())
            if wait <= 0:
                return
            self.waited += wait
            self.sleep(wait)


def make_bucket(spec: RateLimitSpec, redis_client: Any | None, prefix: str = "telehub:upstream:") -> Bucket:
    if redis_client is None:
        return MemoryBucket(spec.requests_per_second, spec.burst)
    return RedisBucket(redis_client, spec.requests_per_second, spec.burst, prefix)
