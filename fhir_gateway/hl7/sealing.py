"""Message bytes at rest: sealed by the store's body codec (AES-256-GCM when encryption is on).

The codec speaks JSON objects, so the bytes travel base64-encoded inside one; the associated
data binds each blob to its table and row, so a blob copied into another row will not open.
"""
from __future__ import annotations

import base64

from fhir_gateway.storage.codec import BodyCodec


def seal(codec: BodyCodec, raw: bytes, table: str, key: str) -> bytes:
    return codec.encode({"er7": base64.b64encode(raw).decode("ascii")}, f"{table}/{key}".encode())


def unseal(codec: BodyCodec, blob: bytes, table: str, key: str) -> bytes:
    return base64.b64decode(codec.decode(blob, f"{table}/{key}".encode())["er7"])
