"""The server-side session store: AES-256-GCM sealed records under HMAC'd keys, in Redis and in process."""
from __future__ import annotations

import os
from typing import Any

import pytest
import redis

from smart_app.session_store import MemoryBackend, RedisBackend, SealedStore

TOKEN = "eyJhbGciOiJSUzM4NCJ9.very-secret-access-token.signature"
SID = "opaque-session-id-in-the-cookie"


def _record() -> dict[str, object]:
    return {"access_token": TOKEN, "refresh_token": "refresh-" + TOKEN, "context": {"patient": "Patient-123"}}


def _check_sealed(store: SealedStore, raw_items: dict[bytes, bytes]) -> None:
    assert raw_items, "nothing was written"
    for key, value in raw_items.items():
        assert SID.encode() not in key  # the storage key is an HMAC of the id
        for secret in (TOKEN.encode(), b"refresh-", b"Patient-123", b"access_token"):
            assert secret not in value
    assert store.get("session", SID) == _record()


def test_memory_store_seals_records() -> None:
    backend = MemoryBackend()
    store = SealedStore(backend, os.urandom(32))
    store.put("session", SID, _record(), 60)
    _check_sealed(store, {k.encode(): v[0] for k, v in backend._items.items()})


def test_redis_store_holds_no_token_bytes_in_plaintext(redis_url: str, redis_key_prefix: str) -> None:
    store = SealedStore(RedisBackend(redis_url, redis_key_prefix), os.urandom(32))
    store.put("session", SID, _record(), 60)
    client = redis.Redis.from_url(redis_url)
    try:
        raw: dict[bytes, bytes] = {k: bytes(client.get(k) or b"")  # type: ignore[arg-type]
                                   for k in client.scan_iter(match=f"{redis_key_prefix}*")}
        _check_sealed(store, raw)
        ttls: list[Any] = [client.ttl(k) for k in raw]
        assert all(0 < int(t) <= 60 for t in ttls)  # idle timeout enforced by Redis
    finally:
        client.close()
    assert store.take("session", SID) == _record() and store.get("session", SID) is None  # single use


@pytest.mark.parametrize("attack", ["tamper", "move", "other-key"])
def test_tampered_moved_or_foreign_records_read_as_absent(attack: str) -> None:
    backend = MemoryBackend()
    secret = os.urandom(32)
    store = SealedStore(backend, secret)
    store.put("session", SID, _record(), 60)
    store.put("session", "another-id", {"x": 1}, 60)
    key = store._key("session", SID)
    blob = backend.get(key) or b""
    if attack == "tamper":
        backend.set(key, blob[:-1] + bytes([blob[-1] ^ 1]), 60)
        assert store.get("session", SID) is None
    elif attack == "move":  # a valid record copied under another id does not open there
        backend.set(store._key("session", "another-id"), blob, 60)
        assert store.get("session", "another-id") is None
    else:
        assert SealedStore(backend, os.urandom(32)).get("session", SID) is None


def test_expiry() -> None:
    now = [1000.0]
    store = SealedStore(MemoryBackend(clock=lambda: now[0]), os.urandom(32))
    store.put("state", "s", {"v": 1}, 10)
    now[0] += 11
    assert store.get("state", "s") is None
