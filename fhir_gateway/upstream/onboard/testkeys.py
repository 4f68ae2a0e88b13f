"""A throwaway RSA key for offline (replay) runs: the replayed token endpoint accepts any assertion,
but the hub still builds one exactly as it would live (Epic: RS384, kid, jku, exp ≤ 5 min)."""
from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def throwaway_key(path: Path) -> str:
    """Write a fresh 2048-bit key (mode 0600) at ``path`` unless one is there; returns the path."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
    return str(path)
