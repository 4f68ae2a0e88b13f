"""Envelope encryption of resource bodies: the :class:`~fhir_gateway.storage.codec.BodyCodec` in force.

``encode``: compact JSON (orjson) → zlib → AES-256-GCM under the key ring's active
data key, with a fresh random 96-bit nonce. The stored blob is a 20-byte header
followed by the ciphertext and its 16-byte tag::

    offset  size  field
    0       2     magic  b"TE"
    2       1     format 1
    3       1     flags  (bit 0: payload is zlib-compressed)
    4       4     data-key version, big-endian
    8       12    nonce
    20      …     AES-GCM ciphertext ‖ tag

The GCM associated data is the header followed by the row binding the repository
passes (``associated_data(type, id, version)``), so a body copied to another row,
or a header edited to name another key, fails the tag check. ``decode`` turns every
failure (bad tag, unknown key version, unknown format, garbage) into a bare
:class:`~fhir_gateway.errors.DataIntegrityError`: the message says nothing about
the row, the key or the content. The key version sits at a fixed offset so SQL can
count and select rows per key version without decrypting them (``crypto/rotation.py``).

With random nonces NIST SP 800-38D allows 2**32 encryptions per key: rotate keys
(``telehub keys rotate``) well before that many writes.
"""
from __future__ import annotations

import logging
import os
import struct
import zlib
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fhir_gateway.crypto.keyring import KeyRing
from fhir_gateway.errors import DataIntegrityError

log = logging.getLogger("telehub.crypto")

MAGIC = b"TE"
FORMAT = 1
PREFIX = MAGIC + bytes([FORMAT])  # what every envelope starts with
FLAG_ZLIB = 0x01
KNOWN_FLAGS = FLAG_ZLIB
HEADER = struct.Struct(">2sBBI12s")
HEADER_SIZE = HEADER.size  # 20
VERSION_OFFSET = 4  # key version: bytes [4, 8)
NONCE_SIZE = 12
TAG_SIZE = 16


def is_envelope(blob: bytes) -> bool:
    return len(blob) >= HEADER_SIZE + TAG_SIZE and blob[:3] == PREFIX


def key_version(blob: bytes) -> int | None:
    """The data-key version an envelope was sealed under; None if ``blob`` is not an envelope."""
    if not is_envelope(blob):
        return None
    version: int = struct.unpack_from(">I", blob, VERSION_OFFSET)[0]
    return version


def version_bytes(version: int) -> bytes:
    """A key version as stored in the header (for SQL comparisons on ``substr(body, 5, 4)``)."""
    return struct.pack(">I", version)


def _integrity_failure(reason: str) -> DataIntegrityError:
    # reason is one of a few fixed words; never the row, the key version or any content
    log.warning("a stored body failed its integrity check (%s)", reason)
    return DataIntegrityError()


class EnvelopeCodec:
    """AES-256-GCM envelope encryption of bodies under the key ring's data keys. Thread-safe."""

    def __init__(self, keyring: KeyRing, *, level: int = 1, compress_over: int = 2048) -> None:
        """``compress_over``: bodies smaller than this many bytes of JSON are sealed uncompressed.
        Profiling showed zlib is ~85 % of the codec's cost, and most resources are ~1 KB, where it
        saves little space; large ones (ExplanationOfBenefit, Bundles) still compress."""
        self.keyring = keyring
        self.level = level
        self.compress_over = compress_over

    # -- BodyCodec ------------------------------------------------------------------------------
    def encode(self, resource: dict[str, Any], aad: bytes) -> bytes:
        payload = orjson.dumps(resource)
        if len(payload) < self.compress_over:
            return self.seal(payload, aad, flags=0)
        return self.seal(zlib.compress(payload, self.level), aad, flags=FLAG_ZLIB)

    def decode(self, blob: bytes, aad: bytes) -> dict[str, Any]:
        payload = self.open(blob, aad)
        try:
            value = orjson.loads(payload)
        except orjson.JSONDecodeError:  # authentic but not JSON: only a bug writes that
            raise _integrity_failure("payload") from None
        if not isinstance(value, dict):
            raise _integrity_failure("payload")
        return value

    # -- lower level ----------------------------------------------------------------------------
    def seal(self, payload: bytes, aad: bytes, *, flags: int = 0) -> bytes:
        """Encrypt ``payload`` (already serialised; ``flags`` says how) under the active key."""
        version, aead = self.keyring.active()
        return self._seal(version, aead, payload, aad, flags)

    @staticmethod
    def _seal(version: int, aead: AESGCM, payload: bytes, aad: bytes, flags: int) -> bytes:
        nonce = os.urandom(NONCE_SIZE)
        header = HEADER.pack(MAGIC, FORMAT, flags, version, nonce)
        return header + aead.encrypt(nonce, payload, header + aad)

    def _open_raw(self, blob: bytes, aad: bytes) -> tuple[int, int, bytes]:
        """(key version, flags, payload as sealed) or :class:`DataIntegrityError`."""
        if not isinstance(blob, bytes):
            blob = bytes(blob)
        if not is_envelope(blob):
            raise _integrity_failure("format")
        _, _, flags, version, nonce = HEADER.unpack_from(blob)
        if flags & ~KNOWN_FLAGS:
            raise _integrity_failure("format")
        aead = self.keyring.cipher(version)
        if aead is None:
            raise _integrity_failure("unknown key")
        try:
            payload = aead.decrypt(nonce, blob[HEADER_SIZE:], blob[:HEADER_SIZE] + aad)
        except InvalidTag:
            raise _integrity_failure("tag") from None
        return version, flags, payload

    def open(self, blob: bytes, aad: bytes) -> bytes:
        """Decrypt and decompress: the serialised JSON bytes."""
        _, flags, payload = self._open_raw(blob, aad)
        if flags & FLAG_ZLIB:
            try:
                payload = zlib.decompress(payload)
            except zlib.error:
                raise _integrity_failure("payload") from None
        return payload

    def reseal(self, blob: bytes, aad: bytes) -> bytes | None:
        """Re-encrypt ``blob`` under the active key without re-serialising it; None if it already is.

        :class:`DataIntegrityError` if ``blob`` does not open under ``aad``.
        """
        active, aead = self.keyring.active()
        version, flags, payload = self._open_raw(blob, aad)
        if version == active:
            return None
        return self._seal(active, aead, payload, aad, flags)

    def __repr__(self) -> str:
        return f"EnvelopeCodec({self.keyring!r})"
