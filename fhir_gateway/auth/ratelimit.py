"""Fixed-window rate limits for the login page and the token endpoint (OWASP ASVS 2.2.1, 11.1.4).

A window opens at a key's first hit and lasts ``window`` seconds; the counter is atomic in
both backends: Redis (one Lua script: ``INCR`` then ``PEXPIRE`` on the first hit, shared by
every worker) when ``redis_url`` is set, else an in-process dict with an injectable clock.
Keys are hashed, so usernames and client ids never appear in Redis.

Wiring: :func:`init_app` puts a :class:`Throttle` in ``app.extensions[EXT]``; the login and
token views ask it with :meth:`Throttle.check`, which returns the seconds to wait (0: go on).
"""
from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from flask import Flask

EXT = "telehub.auth.ratelimit"
DEFAULT_PREFIX = "telehub:auth:rl:"


@dataclass(frozen=True)
class Limit:
    name: str
    count: int  # hits allowed per window
    window: int  # seconds


@dataclass(frozen=True)
class Limits:
    """The defaults; pass another instance to :class:`Throttle` to change them."""

    login_user: Limit = Limit("login-user", 10, 60)  # per client IP + username
    login_ip: Limit = Limit("login-ip", 30, 60)  # per client IP
    token: Limit = Limit("token", 60, 60)  # per client_id + client IP


class Counter(Protocol):
    def hit(self, key: str, window: int) -> tuple[int, float]:
        """Count one hit on ``key``; returns the count in the current window and the seconds until it ends."""
        ...


class MemoryCounter:
    """In-process counters (one worker only); expired windows are swept once the table grows."""

    def __init__(self, clock: Callable[[], float] = time.time, sweep_at: int = 10_000) -> None:
        self._clock = clock
        self._sweep_at = sweep_at
        self._windows: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, window: int) -> tuple[int, float]:
        with self._lock:
            now = self._clock()
            if len(self._windows) >= self._sweep_at:
                self._windows = {k: v for k, v in self._windows.items() if v[1] > now}
            count, ends = self._windows.get(key, (0, 0.0))
            if ends <= now:
                count, ends = 0, now + window
            count += 1
            self._windows[key] = (count, ends)
            return count, ends - now


_HIT = """
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if n == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
"""


class RedisCounter:
    """Counters in Redis under ``prefix``; one Lua script makes increment and expiry atomic."""

    def __init__(self, client: Any, prefix: str = DEFAULT_PREFIX) -> None:
        self._prefix = prefix
        self._script = client.register_script(_HIT)

    def hit(self, key: str, window: int) -> tuple[int, float]:
        count, ttl_ms = self._script(keys=[self._prefix + key], args=[window * 1000])
        return int(count), int(ttl_ms) / 1000


def make_counter(redis_url: str | None, prefix: str = DEFAULT_PREFIX) -> Counter:
    if not redis_url:
        return MemoryCounter()
    import redis

    return RedisCounter(redis.Redis.from_url(redis_url), prefix)


class Throttle:
    """Applies :class:`Limits` to request attributes (IP, username, client id) over a :class:`Counter`."""

    def __init__(self, counter: Counter, limits: Limits | None = None) -> None:
        self.counter = counter
        self.limits = limits or Limits()

    @staticmethod
    def key(limit: Limit, *parts: str) -> str:
        digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
        return f"{limit.name}:{digest}"

    def check(self, *checks: tuple[Limit, tuple[str, ...]]) -> int:
        """Count a hit against every ``(limit, key parts)``; 0 if all are within limits, else Retry-After seconds."""
        wait = 0
        for limit, parts in checks:
            count, remaining = self.counter.hit(self.key(limit, *parts), limit.window)
            if count > limit.count:
                wait = max(wait, max(1, math.ceil(remaining)))
        return wait

    def login(self, ip: str, username: str) -> int:
        return self.check((self.limits.login_user, (ip, username.casefold())), (self.limits.login_ip, (ip,)))

    def token(self, ip: str, client_id: str) -> int:
        return self.check((self.limits.token, (ip, client_id)))


def init_app(app: Flask, redis_url: str | None, *, throttle: Throttle | None = None) -> Throttle:
    """Attach the throttle the auth views use (Redis-backed when ``redis_url`` is set)."""
    app.extensions[EXT] = throttle or Throttle(make_counter(redis_url))
    return app.extensions[EXT]  # type: ignore[no-any-return]
