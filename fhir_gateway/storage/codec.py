"""The body codec seam: every resource body passes through it on its way to and from the database.

The security issue plugs AES-256-GCM envelope encryption in here; until then
:class:`JsonCodec` stores compact JSON and :class:`CompressingCodec` adds zlib.
The associated data (type, id, version) is passed so an encrypting codec can
bind a ciphertext to its row and refuse one copied into another.
"""
from __future__ import annotations

import zlib
from typing import Any, Protocol

import orjson


class BodyCodec(Protocol):
    def encode(self, resource: dict[str, Any], aad: bytes) -> bytes: ...

    def decode(self, blob: bytes, aad: bytes) -> dict[str, Any]: ...


def associated_data(rtype: str, fid: str, version: int) -> bytes:
    return f"{rtype}/{fid}/{version}".encode()


class JsonCodec:
    """Identity codec: compact UTF-8 JSON."""

    def encode(self, resource: dict[str, Any], aad: bytes) -> bytes:
        return orjson.dumps(resource)

    def decode(self, blob: bytes, aad: bytes) -> dict[str, Any]:
        value: dict[str, Any] = orjson.loads(blob)
        return value


class CompressingCodec:
    """JSON then zlib; what an encrypting codec wraps (compress before encrypting)."""

    MAGIC = b"Z1"

    def __init__(self, level: int = 1) -> None:
        self.level = level

    def encode(self, resource: dict[str, Any], aad: bytes) -> bytes:
        return self.MAGIC + zlib.compress(orjson.dumps(resource), self.level)

    def decode(self, blob: bytes, aad: bytes) -> dict[str, Any]:
        if blob[:2] == self.MAGIC:
            blob = zlib.decompress(blob[2:])
        value: dict[str, Any] = orjson.loads(blob)
        return value
