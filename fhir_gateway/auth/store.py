"""Short-lived server-side state: launch contexts, pending authorizations, login sessions, ``jti`` replay cache.

One small interface, :class:`EphemeralStore`, with a Redis implementation
(``TELEHUB_REDIS_URL`` set; keys under a prefix) and an in-process twin.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Protocol

import orjson


class EphemeralStore(Protocol):
    def put(self, key: str, value: dict[str, Any], ttl: int) -> None: ...

    def get(self, key: str) -> dict[str, Any] | None: ...

    def take(self, key: str) -> dict[str, Any] | None:
        """Get and delete atomically (single use)."""
        ...

    def add(self, key: str, ttl: int) -> bool:
        """Record ``key`` for ``ttl`` seconds; False if it was already there (replay)."""
        ...

    def delete(self, key: str) -> None: ...


class MemoryStore:
    """In-process store (one worker only); expiry checked on access."""

    def __init__(self, clock: Any = time.time) -> None:
        self._data: dict[str, tuple[float, bytes]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def _live(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[0] <= self._clock():
            del self._data[key]
            return None
        return item[1]

    def put(self, key: str, value: dict[str, Any], ttl: int) -> None:
        with self._lock:
            self._data[key] = (self._clock() + ttl, orjson.dumps(value))

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            raw = self._live(key)
        return None if raw is None else dict(orjson.loads(raw))

    def take(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            raw = self._live(key)
            self._data.pop(key, None)
        return None if raw is None else dict(orjson.loads(raw))

    def add(self, key: str, ttl: int) -> bool:
        with self._lock:
            if self._live(key) is not None:
                return False
            self._data[key] = (self._clock() + ttl, b"{}")
            return True

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)


class RedisStore:
    """Redis store shared by every worker; ``take`` uses GETDEL, ``add`` SET NX EX."""

    def __init__(self, client: Any, prefix: str = "telehub:auth:") -> None:
        self._r = client
        self._p = prefix

    def put(self, key: str, value: dict[str, Any], ttl: int) -> None:
        self._r.set(self._p + key, orjson.dumps(value), ex=ttl)

    def get(self, key: str) -> dict[str, Any] | None:
        raw = self._r.get(self._p + key)
        return None if raw is None else dict(orjson.loads(raw))

    def take(self, key: str) -> dict[str, Any] | None:
        raw = self._r.getdel(self._p + key)
        return None if raw is None else dict(orjson.loads(raw))

    def add(self, key: str, ttl: int) -> bool:
        return bool(self._r.set(self._p + key, b"1", ex=ttl, nx=True))

    def delete(self, key: str) -> None:
        self._r.delete(self._p + key)


def make_store(redis_url: str | None, prefix: str = "telehub:auth:") -> EphemeralStore:
    if not redis_url:
        return MemoryStore()
    import redis

    return RedisStore(redis.Redis.from_url(redis_url), prefix)
