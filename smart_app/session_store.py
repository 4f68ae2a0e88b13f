"""Server-side session and launch-state storage, sealed with AES-256-GCM.

The browser holds only an opaque random id (the cookie); tokens, PKCE verifiers and the launch
context live here (STYLE.md: never in the cookie). Redis when configured (many workers), otherwise
in-process. Every record is encrypted with a key derived from the app's secret key (HKDF), the
record's storage key is the additional data (a record cannot be moved to another key), and the
storage key itself is an HMAC of the id, so neither the id nor a token is readable in Redis.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from typing import Any, Protocol

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE = 12


def derive(secret: bytes, label: str) -> bytes:
    """A 32-byte subkey of the app secret for one purpose."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label.encode()).derive(secret)


class Backend(Protocol):
    def get(self, key: str) -> bytes | None: ...
    def set(self, key: str, value: bytes, ttl: int) -> None: ...
    def take(self, key: str) -> bytes | None: ...
    def delete(self, key: str) -> None: ...


class MemoryBackend:
    """In-process twin of :class:`RedisBackend` (one worker: ``make run``, tests)."""

    def __init__(self, clock: Any = time.time) -> None:
        self._items: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def get(self, key: str) -> bytes | None:
        with self._lock:
            found = self._items.get(key)
            if found is None or found[1] <= self._clock():
                self._items.pop(key, None)
                return None
            return found[0]

    def set(self, key: str, value: bytes, ttl: int) -> None:
        now = self._clock()
        with self._lock:
            if len(self._items) > 10_000:  # sweep expired records now and then
                self._items = {k: v for k, v in self._items.items() if v[1] > now}
            self._items[key] = (value, now + ttl)

    def take(self, key: str) -> bytes | None:
        with self._lock:
            found = self._items.pop(key, None)
        return found[0] if found and found[1] > self._clock() else None

    def delete(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)


class RedisBackend:
    def __init__(self, url: str, prefix: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=5)
        self.prefix = prefix

    def get(self, key: str) -> bytes | None:
        found: bytes | None = self._redis.get(self.prefix + key)  # type: ignore[assignment]
        return found

    def set(self, key: str, value: bytes, ttl: int) -> None:
        self._redis.set(self.prefix + key, value, ex=max(1, ttl))

    def take(self, key: str) -> bytes | None:
        found: bytes | None = self._redis.getdel(self.prefix + key)  # type: ignore[assignment]
        return found

    def delete(self, key: str) -> None:
        self._redis.delete(self.prefix + key)


class SealedStore:
    """JSON records under ``kind:HMAC(id)``, AES-256-GCM sealed; unreadable or tampered records read as absent."""

    def __init__(self, backend: Backend, secret: bytes) -> None:
        self.backend = backend
        self._aead = AESGCM(derive(secret, "telehub/app/session-store/v1"))
        self._name_key = derive(secret, "telehub/app/session-names/v1")

    def _key(self, kind: str, ident: str) -> str:
        return f"{kind}:{hmac.new(self._name_key, ident.encode(), hashlib.sha256).hexdigest()}"

    def _seal(self, key: str, value: dict[str, Any]) -> bytes:
        nonce = os.urandom(NONCE)
        return nonce + self._aead.encrypt(nonce, orjson.dumps(value), key.encode())

    def _open(self, key: str, blob: bytes | None) -> dict[str, Any] | None:
        if not blob or len(blob) <= NONCE:
            return None
        try:
            found: dict[str, Any] = orjson.loads(self._aead.decrypt(blob[:NONCE], blob[NONCE:], key.encode()))
        except (InvalidTag, orjson.JSONDecodeError):
            return None
        return found

    def put(self, kind: str, ident: str, value: dict[str, Any], ttl: int) -> None:
        key = self._key(kind, ident)
        self.backend.set(key, self._seal(key, value), ttl)

    def get(self, kind: str, ident: str) -> dict[str, Any] | None:
        key = self._key(kind, ident)
        return self._open(key, self.backend.get(key))

    def take(self, kind: str, ident: str) -> dict[str, Any] | None:
        """Read and delete (single use: launch state)."""
        key = self._key(kind, ident)
        return self._open(key, self.backend.take(key))

    def delete(self, kind: str, ident: str) -> None:
        self.backend.delete(self._key(kind, ident))


def make_store(redis_url: str | None, prefix: str, secret: bytes) -> SealedStore:
    return SealedStore(RedisBackend(redis_url, prefix) if redis_url else MemoryBackend(), secret)
