"""The hash chain: each entry's hash is an HMAC over its sequence number, its predecessor's hash and
the SHA-256 of its canonical JSON. Without the key nobody can forge a link; any edit, deletion,
insertion or reordering breaks the chain at that point.
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson


def canonical(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event, option=orjson.OPT_SORT_KEYS)


def link_hash(key: bytes, seq: int, prev_hash: str, event: dict[str, Any]) -> str:
    digest = hashlib.sha256(canonical(event)).digest()
    return hmac.new(key, f"{seq}|{prev_hash}|".encode() + digest, hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
