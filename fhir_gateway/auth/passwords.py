"""Password and secret hashing with scrypt (memory-hard, stdlib), compared in constant time.

Format: ``scrypt$n$r$p$salt_b64$hash_b64``. Also used for confidential client secrets.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os

N, R, P, DKLEN = 2**14, 8, 1, 32


def hash_secret(secret: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=N, r=R, p=P, dklen=DKLEN)
    parts = ["scrypt", str(N), str(R), str(P), base64.b64encode(salt).decode(), base64.b64encode(digest).decode()]
    return "$".join(parts)


def verify_secret(secret: str, stored: str | None) -> bool:
    """Constant-time check; a missing or malformed hash still costs one scrypt so timing tells nothing."""
    try:
        scheme, n, r, p, salt_b64, digest_b64 = (stored or "").split("$")
        if scheme != "scrypt":
            raise ValueError(scheme)
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
        n_i, r_i, p_i = int(n), int(r), int(p)
    except ValueError:
        hashlib.scrypt(secret.encode(), salt=b"\0" * 16, n=N, r=R, p=P, dklen=DKLEN)
        return False
    got = hashlib.scrypt(secret.encode(), salt=salt, n=n_i, r=r_i, p=p_i, dklen=len(expected),
                         maxmem=128 * n_i * r_i * 2)
    return hmac.compare_digest(got, expected)


def token_hash(value: str) -> str:
    """SHA-256 of a high-entropy token (codes, refresh tokens) for lookup by hash."""
    return hashlib.sha256(value.encode()).hexdigest()
