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


def event_digest(event: dict[str, Any]) -> bytes:
    """SHA-256 of the canonical JSON: the part of a link that does not depend on the entry's place."""
    return hashlib.sha256(canonical(event)).digest()


def link(key: bytes, seq: int, prev_hash: str, digest: bytes) -> str:
    """The entry's hash from its place (``seq``, ``prev_hash``) and its :func:`event_digest`."""
    return hmac.digest(key, f"{seq}|{prev_hash}|".encode() + digest, "sha256").hex()


def link_hash(key: bytes, seq: int, prev_hash: str, event: dict[str, Any]) -> str:
    return link(key, seq, prev_hash, event_digest(event))


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
