"""The TOTP second factor (RFC 6238, via pyotp): enrolment, the secret sealed at rest, replay-safe checks.

Mandatory for the clinical and administrative roles (:data:`MFA_ROLES`), optional for the others.
The shared secret is stored encrypted with AES-256-GCM under a key derived (HKDF-SHA256, info
``telehub auth totp secrets v1``) from the same ``key_provider`` secret as the signing keys
(:mod:`.keys`); the AAD binds the ciphertext to its username, so a row's secret cannot be moved to
another account. A code is accepted within one time step either side (``valid_window=1``) and only
once: the accepted step is recorded per user and an equal or older step is refused (RFC 6238 §5.2).
"""
from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pyotp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fhir_gateway.auth.errors import AuthConfigError

if TYPE_CHECKING:
    from fhir_gateway.auth.users import User, UserStore

log = logging.getLogger("telehub.auth")

MFA_ROLES = frozenset({"physician", "nurse", "admin"})
ISSUER = "Telehub"
INTERVAL = 30  # seconds per time step (RFC 6238 default, what authenticator apps assume)
VALID_WINDOW = 1  # steps either side, for clock drift
DIGITS = 6


def role_requires_totp(role: str) -> bool:
    return role in MFA_ROLES


def new_secret() -> str:
    """A fresh base32 secret of 160 bits (RFC 4226 §4 recommends at least 128)."""
    return pyotp.random_base32()


def provisioning_uri(username: str, secret: str) -> str:
    """The ``otpauth://`` URI an authenticator app scans; shown once, at enrolment."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).provisioning_uri(name=username, issuer_name=ISSUER)


def matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step whose code equals ``code`` within the window, compared in constant time; else None."""
    code = code.replace(" ", "").strip()
    if len(code) != DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL)
    current = int(now // INTERVAL)
    found: int | None = None
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


class TotpSecrets:
    """Seals and opens TOTP secrets (AES-256-GCM, ``nonce || ciphertext``, AAD = ``auth_user:<username>``)."""

    INFO = b"telehub auth totp secrets v1"

    def __init__(self, key_provider: Callable[[], bytes]) -> None:
        material = key_provider()
        if len(material) < 16:
            raise AuthConfigError("the key provider must return at least 16 bytes")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=self.INFO).derive(material)
        self._aead = AESGCM(key)

    @staticmethod
    def _aad(username: str) -> bytes:
        return f"auth_user:{username}".encode()

    def seal(self, username: str, secret: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, secret.encode(), self._aad(username))

    def open(self, username: str, blob: bytes) -> str:
        blob = bytes(blob)
        return self._aead.decrypt(blob[:12], blob[12:], self._aad(username)).decode()


class TotpMfa:
    """The :class:`~fhir_gateway.auth.users.MfaVerifier` the login page uses: TOTP with single-use codes."""

    def __init__(self, users: UserStore, clock: Callable[[], float] = time.time) -> None:
        self.users = users
        self.clock = clock

    def required(self, user: User) -> bool:
        return role_requires_totp(user.role) or user.has_totp

    def enrolled(self, user: User) -> bool:
        return user.has_totp

    def verify(self, user: User, otp: str) -> bool:
        secret = self.users.totp_secret(user)
        if secret is None:
            return False
        step = matching_step(secret, otp, self.clock())
        if step is None:
            return False
        if not self.users.claim_totp_step(user.pk, step):
            log.info("auth: replayed one-time code refused (user %s)", user.pk)
            return False
        return True
