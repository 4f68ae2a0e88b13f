"""Storage of dynamic registration: initial access tokens and registration records (tables of migration 0006).

Both tokens are bearer secrets of high entropy, so only their SHA-256 is stored (like refresh tokens);
an initial access token has a lifetime, an optional number of uses and an optional scope ceiling.
"""
from __future__ import annotations

import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, insert, or_, select, update

from fhir_gateway.auth.passwords import token_hash
from fhir_gateway.auth.tables import auth_client_registration, auth_code, auth_initial_token, auth_token


@dataclass(frozen=True)
class InitialToken:
    token_hash: str
    scope_ceiling: str | None
    uses_left: int | None
    expires: int


@dataclass(frozen=True)
class Registration:
    client_id: str
    auth_method: str
    metadata: dict[str, Any]
    created: int


def new_token() -> str:
    return secrets.token_urlsafe(32)


class RegistrationStore:
    """Initial access tokens (``telehub clients initial-token``) and the records RFC 7592 reads and deletes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- initial access tokens
    def issue_initial(self, *, expires_in: int, scope_ceiling: str | None = None, uses: int | None = 1) -> str:
        """Create a token; the caller shows it once, only its hash is kept."""
        token, now = new_token(), int(time.time())
        with self.engine.begin() as conn:
            conn.execute(insert(auth_initial_token).values(
                token_hash=token_hash(token), scope_ceiling=scope_ceiling, uses_left=uses,
                expires=now + expires_in, created=now))
        return token

    def find_initial(self, token: str) -> InitialToken | None:
        """The token if it is known, unexpired and not used up (it is not consumed here)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(auth_initial_token)
                               .where(auth_initial_token.c.token_hash == token_hash(token))).first()
        if row is None or row.expires <= time.time() or (row.uses_left is not None and row.uses_left <= 0):
            return None
        return InitialToken(row.token_hash, row.scope_ceiling, row.uses_left, int(row.expires))

    def consume(self, initial: InitialToken) -> bool:
        """Take one use atomically; False when a concurrent registration took the last one or it expired."""
        t = auth_initial_token.c
        with self.engine.begin() as conn:
            return conn.execute(update(auth_initial_token)
                                .where(t.token_hash == initial.token_hash, t.expires > int(time.time()),
                                       or_(t.uses_left.is_(None), t.uses_left > 0))
                                .values(uses_left=t.uses_left - 1)).rowcount == 1

    def refund(self, initial: InitialToken) -> None:
        """Give back a use taken for a registration that then failed."""
        t = auth_initial_token.c
        with self.engine.begin() as conn:
            conn.execute(update(auth_initial_token).where(t.token_hash == initial.token_hash, t.uses_left.isnot(None))
                         .values(uses_left=t.uses_left + 1))

    # -- registrations (RFC 7592)
    def save(self, client_id: str, *, access_token: str, initial: InitialToken | None, auth_method: str,
             metadata: dict[str, Any], created: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(auth_client_registration).values(
                client_id=client_id, access_token_hash=token_hash(access_token),
                initial_token_hash=initial.token_hash if initial else None, auth_method=auth_method,
                metadata_json=json.dumps(metadata), created=created))

    def authenticate(self, client_id: str, access_token: str) -> Registration | None:
        """The registration of ``client_id`` if ``access_token`` is its registration access token."""
        with self.engine.connect() as conn:
            row = conn.execute(select(auth_client_registration)
                               .where(auth_client_registration.c.client_id == client_id)).first()
        if row is None or not hmac.compare_digest(row.access_token_hash, token_hash(access_token)):
            return None
        return Registration(row.client_id, row.auth_method, json.loads(row.metadata_json), int(row.created))

    def delete(self, client_id: str) -> None:
        """Forget the registration and invalidate the client's codes and tokens (RFC 7592 §2.3)."""
        with self.engine.begin() as conn:
            conn.execute(delete(auth_client_registration).where(auth_client_registration.c.client_id == client_id))
            conn.execute(update(auth_token).where(auth_token.c.client_id == client_id).values(revoked=True))
            conn.execute(update(auth_code).where(auth_code.c.client_id == client_id).values(used=True))
