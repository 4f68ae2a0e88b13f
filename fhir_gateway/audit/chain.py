"""The hash chains: each entry's hash is an HMAC over its place in its chain, its predecessor's hash and
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


def link(key: bytes, seq: int, prev_hash: str, digest: bytes, chain: int = 1) -> str:
    """The entry's hash from its place (``chain``, ``seq`` in it, ``prev_hash``) and its :func:`event_digest`.

    Chain 1 keeps the original form (``seq|prev|``), so entries written before there were several chains
    still verify; other chains name themselves (``chain/seq|prev|``), so an entry moved between chains breaks.
    """
    place = str(seq) if chain == 1 else f"{chain}/{seq}"
    return hmac.digest(key, f"{place}|{prev_hash}|".encode() + digest, "sha256").hex()


def link_hash(key: bytes, seq: int, prev_hash: str, event: dict[str, Any], chain: int = 1) -> str:
    return link(key, seq, prev_hash, event_digest(event), chain)


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
