"""The key-encryption key (KEK) behind a small KMS interface.

Data-encryption keys (DEKs, see :mod:`fhir_gateway.crypto.keyring`) are stored in
the database only *wrapped* by the KEK; the KEK itself never touches the database.
:class:`Kms` is everything the key ring needs, so a cloud KMS (AWS KMS ``Encrypt``/
``Decrypt`` with an encryption context, GCP Cloud KMS with additional authenticated
data, Vault transit) can replace :class:`FileKms` without touching anything else.

:class:`FileKms` reads ``TELEHUB_KEK_FILE``: 32 random bytes, base64-encoded
(``head -c 32 /dev/urandom | base64 > kek.key``). Wrapping is AES-256-GCM under the
KEK with a fresh 96-bit nonce; the authenticated data is the KEK id plus the caller's
context (the key ring passes the DEK's purpose and version), so a wrapped key moved
to another ``data_key`` row, or presented to another KEK, fails to unwrap.

Errors name the file and what is wrong with it, never its content.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fhir_gateway.settings import Settings, SettingsError

log = logging.getLogger("telehub.crypto")

KEY_BYTES = 32
NONCE_BYTES = 12
WRAP_FORMAT = b"\x01"  # first byte of a FileKms-wrapped key: the wrapping format
DEFAULT_DEV_KEK_PATH = Path("var") / "kek.key"


class KmsError(Exception):
    """A key could not be wrapped or unwrapped (wrong KEK, or a tampered wrapped key)."""


class KekFileError(SettingsError):
    """The KEK file is missing, unreadable or malformed; raised at start-up. Never contains key material."""


@runtime_checkable
class Kms(Protocol):
    """Wraps and unwraps data keys under a key-encryption key that never leaves the KMS."""

    @property
    def key_id(self) -> str:
        """A stable, non-secret id of the KEK (stored beside every key it wrapped)."""
        ...

    def wrap(self, plaintext_key: bytes, *, context: bytes = b"") -> bytes:
        """Encrypt ``plaintext_key``; ``context`` is authenticated, and must be given again to unwrap."""
        ...

    def unwrap(self, wrapped: bytes, *, context: bytes = b"") -> bytes:
        """Decrypt a key wrapped by :meth:`wrap` with the same context; :class:`KmsError` if it fails."""
        ...


def kek_fingerprint(kek: bytes) -> str:
    """A non-secret id for a KEK: a domain-separated SHA-256 of it, truncated (like a key check value)."""
    return "file:" + hashlib.sha256(b"telehub/kek-id/v1\x00" + kek).hexdigest()[:16]


class FileKms:
    """A KEK held in memory, read from a file (``TELEHUB_KEK_FILE``)."""

    def __init__(self, kek: bytes, *, source: str = "<memory>") -> None:
        if len(kek) != KEY_BYTES:
            raise KekFileError(f"key-encryption key {source} must be {KEY_BYTES} bytes, not {len(kek)}")
        self._aead = AESGCM(kek)
        self._key_id = kek_fingerprint(kek)
        self.source = source

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> FileKms:
        """Load a base64 KEK file; :class:`KekFileError` (naming the file, never its content) if unusable."""
        p = Path(path)
        try:
            raw = p.read_bytes()
        except FileNotFoundError:
            raise KekFileError(f"TELEHUB_KEK_FILE {p} does not exist") from None
        except OSError as exc:
            raise KekFileError(f"TELEHUB_KEK_FILE {p} cannot be read: {exc.strerror or type(exc).__name__}") from None
        try:
            kek = base64.b64decode(raw.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise KekFileError(f"TELEHUB_KEK_FILE {p} is not base64; it must hold {KEY_BYTES} random bytes, "
                               "base64-encoded (head -c 32 /dev/urandom | base64)") from None
        if len(kek) != KEY_BYTES:
            raise KekFileError(f"TELEHUB_KEK_FILE {p} holds {len(kek)} bytes after base64 decoding; "
                               f"a key-encryption key must be exactly {KEY_BYTES}")
        _warn_if_exposed(p)
        return cls(kek, source=str(p))

    @property
    def key_id(self) -> str:
        return self._key_id

    def _aad(self, context: bytes) -> bytes:
        return self._key_id.encode() + b"\x00" + context

    def wrap(self, plaintext_key: bytes, *, context: bytes = b"") -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return WRAP_FORMAT + nonce + self._aead.encrypt(nonce, plaintext_key, self._aad(context))

    def unwrap(self, wrapped: bytes, *, context: bytes = b"") -> bytes:
        if len(wrapped) < 1 + NONCE_BYTES + 16 or wrapped[:1] != WRAP_FORMAT:
            raise KmsError("wrapped key has an unknown format")
        nonce = wrapped[1:1 + NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, wrapped[1 + NONCE_BYTES:], self._aad(context))
        except InvalidTag:
            raise KmsError(f"wrapped key does not unwrap under KEK {self._key_id}") from None

    def __repr__(self) -> str:  # never the key
        return f"FileKms(key_id={self._key_id!r}, source={self.source!r})"


def _warn_if_exposed(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("key-encryption key file %s is readable by group or others (mode %o); chmod 600 it",
                    path, stat.S_IMODE(mode))


def generate_kek_file(path: str | os.PathLike[str]) -> Path:
    """Write a new random KEK (base64, mode 0600) to ``path``; refuse to overwrite an existing file.

    Written to a temporary file and hard-linked into place, so processes starting at
    the same time either create the file or find it complete, never half-written.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".kek-", dir=p.parent)  # mkstemp creates the file with mode 0600
    try:
        os.write(fd, base64.b64encode(os.urandom(KEY_BYTES)) + b"\n")
        os.fsync(fd)
        os.close(fd)
        os.link(tmp, p)  # atomic; FileExistsError if another process won
    finally:
        os.unlink(tmp)
    return p


def load_kms(settings: Settings, *, dev_kek_path: str | os.PathLike[str] | None = None) -> Kms:
    """The KMS for ``settings``: the KEK from ``TELEHUB_KEK_FILE``.

    Without a KEK file, production (``TELEHUB_ENV=prod``) refuses to start; dev and
    test use ``dev_kek_path`` (default ``./var/kek.key``), generating it with a
    warning the first time.
    """
    if settings.kek_file:
        return FileKms.from_file(settings.kek_file)
    if settings.env == "prod":
        raise KekFileError("TELEHUB_KEK_FILE is required when TELEHUB_ENV=prod: it names a file holding the "
                           "key-encryption key (32 random bytes, base64). Keep it outside the database and "
                           "its backups.")
    path = Path(dev_kek_path) if dev_kek_path is not None else DEFAULT_DEV_KEK_PATH
    if not path.exists():
        try:
            generate_kek_file(path)
            log.warning("TELEHUB_KEK_FILE is not set: generated a development key-encryption key at %s. "
                        "Losing it makes the encrypted data unreadable; never use it in production.", path)
        except FileExistsError:
            pass  # another process generated it first
    else:
        log.warning("TELEHUB_KEK_FILE is not set: using the development key-encryption key at %s", path)
    return FileKms.from_file(path)
