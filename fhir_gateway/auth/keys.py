"""Token-signing keys (RS256 and ES256): generation, encrypted storage, JWKS with ``kid``s, rotation.

Private keys are stored in ``auth_signing_key`` encrypted with AES-256-GCM
under a key derived (HKDF-SHA256, info ``telehub auth signing keys v1``) from the
bytes returned by ``key_provider`` — a zero-argument callable supplied by the
app factory. Until the KEK machinery of ``fhir_gateway/crypto`` is wired in,
pass ``lambda: kek_bytes`` (for example the contents of ``TELEHUB_KEK_FILE``);
switching to the crypto package later only means re-wrapping these rows.

Rotation makes a new key active and keeps retired public keys in the JWKS so
tokens they signed still verify until they expire.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey
from sqlalchemy import Engine, insert, select, update

from fhir_gateway.auth.errors import AuthConfigError
from fhir_gateway.auth.tables import auth_signing_key

log = logging.getLogger("telehub.auth")

KeyProvider = Callable[[], bytes]
ACTIVE, RETIRED = "active", "retired"
ALGS = ("RS256", "ES256")
_DEV_SECRET = b"telehub-dev-only-auth-signing-key-secret"


def _wrapping_key(key_provider: KeyProvider) -> AESGCM:
    material = key_provider()
    if len(material) < 16:
        raise AuthConfigError("the key provider must return at least 16 bytes")
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=b"telehub auth signing keys v1").derive(material)
    return AESGCM(derived)


def default_key_provider(kek_file: str | None, env: str) -> KeyProvider:
    """The KEK file's bytes; in dev/test without one a fixed development secret (refused in prod)."""
    if kek_file:
        path = kek_file
        return lambda: open(path, "rb").read()
    if env == "prod":
        raise AuthConfigError("TELEHUB_KEK_FILE is required in production to protect the token-signing keys")
    log.warning("auth: signing keys protected by a development secret (set TELEHUB_KEK_FILE)")
    return lambda: _DEV_SECRET


@dataclass(frozen=True)
class KeyInfo:
    kid: str
    alg: str
    status: str
    created: int


class SigningKeys:
    """Signs with the active key of an algorithm; verifies with every stored public key."""

    def __init__(self, engine: Engine, key_provider: KeyProvider) -> None:
        self.engine = engine
        self._aead = _wrapping_key(key_provider)
        self._lock = threading.Lock()
        self._private: dict[str, RSAKey | ECKey] = {}
        self._public: KeySet | None = None

    # -- management
    def ensure(self) -> None:
        """Create an active key for each algorithm that has none (start-up)."""
        have = {k.alg for k in self.status() if k.status == ACTIVE}
        for alg in ALGS:
            if alg not in have:
                self.rotate(alg)

    def rotate(self, alg: str = "RS256") -> str:
        """Make a new active key for ``alg``; the previous one is retired but kept for verification."""
        if alg not in ALGS:
            raise AuthConfigError(f"unsupported signing algorithm {alg}")
        kid = secrets.token_urlsafe(12)
        params: Any = {"kid": kid, "alg": alg, "use": "sig"}
        key: RSAKey | ECKey = (RSAKey.generate_key(2048, parameters=params) if alg == "RS256"
                               else ECKey.generate_key("P-256", parameters=params))
        pem = key.as_pem(private=True)
        nonce = os.urandom(12)
        blob = nonce + self._aead.encrypt(nonce, pem, kid.encode())
        with self.engine.begin() as conn:
            conn.execute(update(auth_signing_key).where(auth_signing_key.c.alg == alg,
                                                        auth_signing_key.c.status == ACTIVE).values(status=RETIRED))
            conn.execute(insert(auth_signing_key).values(
                kid=kid, alg=alg, public_jwk=json.dumps(key.as_dict(private=False)), private_key=blob,
                status=ACTIVE, created=int(time.time())))
        with self._lock:
            self._public = None
        log.info("auth: new %s signing key %s", alg, kid)
        return kid

    def status(self) -> list[KeyInfo]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(auth_signing_key.c.kid, auth_signing_key.c.alg, auth_signing_key.c.status,
                                       auth_signing_key.c.created).order_by(auth_signing_key.c.created)).all()
        return [KeyInfo(r.kid, r.alg, r.status, int(r.created)) for r in rows]

    # -- use
    def jwks(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(auth_signing_key.c.public_jwk)
                                .order_by(auth_signing_key.c.created.desc())).all()
        return {"keys": [json.loads(r.public_jwk) for r in rows]}

    def public_keyset(self, refresh: bool = False) -> KeySet:
        with self._lock:
            if self._public is not None and not refresh:
                return self._public
        keyset = KeySet.import_key_set(self.jwks())  # type: ignore[arg-type]
        with self._lock:
            self._public = keyset
        return keyset

    def _active(self, alg: str) -> tuple[str, RSAKey | ECKey]:
        with self.engine.connect() as conn:
            row = conn.execute(select(auth_signing_key).where(auth_signing_key.c.alg == alg,
                                                              auth_signing_key.c.status == ACTIVE)).first()
        if row is None:
            raise AuthConfigError(f"no active {alg} signing key (run `telehub keys rotate`)")
        with self._lock:
            cached = self._private.get(row.kid)
        if cached is not None:
            return row.kid, cached
        blob = bytes(row.private_key)
        pem = self._aead.decrypt(blob[:12], blob[12:], row.kid.encode())
        params = {"kid": row.kid, "alg": alg, "use": "sig"}
        key: RSAKey | ECKey = (RSAKey.import_key(pem, parameters=params) if alg == "RS256"  # type: ignore[arg-type]
                               else ECKey.import_key(pem, parameters=params))  # type: ignore[arg-type]
        with self._lock:
            self._private[row.kid] = key
        return row.kid, key

    def sign(self, claims: dict[str, Any], alg: str = "RS256") -> str:
        kid, key = self._active(alg)
        return jwt.encode({"alg": alg, "kid": kid, "typ": "JWT"}, claims, key)

    def decode(self, token: str) -> jwt.Token:
        """Verify the signature (any stored key, by ``kid``); claims are checked by the caller."""
        try:
            return jwt.decode(token, self.public_keyset(), algorithms=list(ALGS))
        except (ValueError, JoseError):
            # an unknown kid may be a key rotated in by another worker
            return jwt.decode(token, self.public_keyset(refresh=True), algorithms=list(ALGS))
