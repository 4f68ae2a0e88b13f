"""End users who sign in at the login page, and the seam for their second factor.

Roles: patient, physician, nurse, front_desk, admin, auditor. A patient user
carries the id of their Patient resource; every user may carry a ``fhirUser``
reference (``Patient/…``, ``Practitioner/…``, ``RelatedPerson/…``, ``Person/…``).

The store keeps what the sign-in rules (:mod:`.signin`) need: the password hash
(scrypt, :mod:`.passwords`), the consecutive-failure count and lock-out end, and the
TOTP secret sealed by :class:`~fhir_gateway.auth.mfa.TotpSecrets` with its last used step.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidTag
from sqlalchemy import Engine, insert, or_, select, update

from fhir_gateway.auth.mfa import TotpSecrets, new_secret, provisioning_uri, role_requires_totp
from fhir_gateway.auth.passwords import hash_secret
from fhir_gateway.auth.tables import auth_user

ROLES = ("patient", "physician", "nurse", "front_desk", "admin", "auditor")
FHIR_USER_TYPES = ("Patient", "Practitioner", "RelatedPerson", "Person")

log = logging.getLogger("telehub.auth")


class UserError(ValueError):
    """A user record is invalid (CLI and API callers)."""


@dataclass(frozen=True)
class User:
    pk: int
    username: str
    role: str
    fhir_user: str | None
    patient: str | None
    disabled: bool
    has_totp: bool = False

    def get_user_id(self) -> str:  # Authlib
        return str(self.pk)


@dataclass(frozen=True)
class NewUser(User):
    """A user just added or re-enrolled: also carries the TOTP secret, to show once (never in ``repr``)."""

    totp_secret: str | None = field(default=None, repr=False, compare=False)

    @property
    def totp_uri(self) -> str | None:
        return provisioning_uri(self.username, self.totp_secret) if self.totp_secret else None


@dataclass(frozen=True)
class Account:
    """What the sign-in rules read: the user, the password hash and the lock-out end (epoch seconds)."""

    user: User
    password_hash: str = field(repr=False)
    locked_until: int | None


class MfaVerifier(Protocol):
    """The second-factor seam (TOTP in :mod:`.mfa`); the sign-in rules call only these methods."""

    def required(self, user: User) -> bool: ...

    def enrolled(self, user: User) -> bool:
        """False when a factor is required but the user has none yet (an administrator must enrol them)."""
        ...

    def verify(self, user: User, otp: str) -> bool: ...


class NoMfa:
    """No second factor (tests of other features, or a deployment that delegates sign-in)."""

    def required(self, user: User) -> bool:
        return False

    def enrolled(self, user: User) -> bool:
        return True

    def verify(self, user: User, otp: str) -> bool:
        return True


def _row(row: object) -> User:
    r = row
    return User(pk=int(r.pk), username=r.username, role=r.role, fhir_user=r.fhir_user,  # type: ignore[attr-defined]
                patient=r.patient, disabled=bool(r.disabled), has_totp=r.totp_secret is not None)  # type: ignore[attr-defined]


class UserStore:
    """Users in ``auth_user``. ``key_provider`` protects TOTP secrets; ``clock`` is injectable for lock-out tests."""

    def __init__(self, engine: Engine, key_provider: Callable[[], bytes] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock
        self._secrets = TotpSecrets(key_provider) if key_provider is not None else None

    def _sealer(self) -> TotpSecrets:
        if self._secrets is None:
            raise UserError("TOTP needs the auth key provider (build the store with key_provider=…)")
        return self._secrets

    def add(self, username: str, password: str, role: str, *, patient: str | None = None,
            fhir_user: str | None = None, totp: bool = False) -> NewUser:
        """Add a user; TOTP is enrolled when asked for or when the role requires it (see ``totp_uri``)."""
        if role not in ROLES:
            raise UserError(f"role must be one of {', '.join(ROLES)}")
        if len(password) < 8:
            raise UserError("password must be at least 8 characters")
        if patient and patient.startswith("Patient/"):
            patient = patient.split("/", 1)[1]
        if role == "patient":
            if not patient:
                raise UserError("a patient user needs --patient")
            fhir_user = fhir_user or f"Patient/{patient}"
        if fhir_user and fhir_user.split("/")[0] not in FHIR_USER_TYPES:
            raise UserError(f"fhirUser must reference one of {', '.join(FHIR_USER_TYPES)}")
        secret = new_secret() if totp or role_requires_totp(role) else None
        sealed = self._sealer().seal(username, secret) if secret else None
        with self.engine.begin() as conn:
            if conn.execute(select(auth_user.c.pk).where(auth_user.c.username == username)).first():
                raise UserError(f"user {username!r} already exists")
            conn.execute(insert(auth_user).values(
                username=username, password_hash=hash_secret(password), role=role, fhir_user=fhir_user,
                patient=patient, totp_secret=sealed, failed_logins=0, disabled=False, created=int(self.clock())))
        user = self.by_username(username)
        assert user is not None
        return NewUser(**vars(user), totp_secret=secret)

    def by_username(self, username: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(auth_user).where(auth_user.c.username == username)).first()
        return _row(row) if row else None

    def get(self, pk: int) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(auth_user).where(auth_user.c.pk == pk)).first()
        return _row(row) if row else None

    def list(self) -> list[User]:
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(select(auth_user).order_by(auth_user.c.username)).all()]

    def disable(self, username: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(update(auth_user).where(auth_user.c.username == username)
                                .values(disabled=True)).rowcount > 0

    # -- sign-in state
    def account(self, username: str) -> Account | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(auth_user).where(auth_user.c.username == username)).first()
        if row is None:
            return None
        return Account(_row(row), row.password_hash, None if row.locked_until is None else int(row.locked_until))

    def record_failure(self, pk: int) -> int:
        """Count one more consecutive failure (atomically); returns the new count."""
        with self.engine.begin() as conn:
            count = conn.execute(update(auth_user).where(auth_user.c.pk == pk)
                                 .values(failed_logins=auth_user.c.failed_logins + 1)
                                 .returning(auth_user.c.failed_logins)).scalar_one()
        return int(count)

    def lock(self, pk: int, until: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(auth_user).where(auth_user.c.pk == pk).values(locked_until=until))

    def record_success(self, pk: int) -> None:
        """A successful sign-in clears the failure count and any lock (no write when there is nothing to clear)."""
        with self.engine.begin() as conn:
            conn.execute(update(auth_user)
                         .where(auth_user.c.pk == pk,
                                or_(auth_user.c.failed_logins != 0, auth_user.c.locked_until.is_not(None)))
                         .values(failed_logins=0, locked_until=None))

    def unlock(self, username: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(update(auth_user).where(auth_user.c.username == username)
                                .values(failed_logins=0, locked_until=None)).rowcount > 0

    # -- TOTP
    def enrol_totp(self, username: str) -> NewUser:
        """Give the user a new TOTP secret (replacing any old one); the caller shows ``totp_uri`` once."""
        secret = new_secret()
        with self.engine.begin() as conn:
            done = conn.execute(update(auth_user).where(auth_user.c.username == username)
                                .values(totp_secret=self._sealer().seal(username, secret), totp_last_step=None))
        user = self.by_username(username) if done.rowcount else None
        if user is None:
            raise UserError(f"no user {username!r}")
        return NewUser(**vars(user), totp_secret=secret)

    def totp_secret(self, user: User) -> str | None:
        """The clear secret, or None when there is none or it does not open (wrong key, or moved to another row)."""
        with self.engine.connect() as conn:
            blob = conn.execute(select(auth_user.c.totp_secret).where(auth_user.c.pk == user.pk)).scalar()
        if blob is None:
            return None
        try:
            return self._sealer().open(user.username, blob)
        except InvalidTag:
            log.error("auth: the TOTP secret of user %s does not decrypt (wrong key or tampered row)", user.pk)
            return None

    def claim_totp_step(self, pk: int, step: int) -> bool:
        """Record ``step`` as used; False if it, or a later one, already was (a replayed code). Atomic."""
        with self.engine.begin() as conn:
            result = conn.execute(update(auth_user)
                                  .where(auth_user.c.pk == pk,
                                         or_(auth_user.c.totp_last_step.is_(None),
                                             auth_user.c.totp_last_step < step))
                                  .values(totp_last_step=step))
        return result.rowcount == 1
