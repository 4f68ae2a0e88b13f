"""End users who sign in at the login page, and the seam for their second factor.

Roles: patient, physician, nurse, front_desk, admin, auditor. A patient user
carries the id of their Patient resource; every user may carry a ``fhirUser``
reference (``Patient/…``, ``Practitioner/…``, ``RelatedPerson/…``, ``Person/…``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine, insert, select, update

from fhir_gateway.auth.passwords import hash_secret, verify_secret
from fhir_gateway.auth.tables import auth_user

ROLES = ("patient", "physician", "nurse", "front_desk", "admin", "auditor")
FHIR_USER_TYPES = ("Patient", "Practitioner", "RelatedPerson", "Person")


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


class MfaVerifier(Protocol):
    """The second-factor seam: TOTP (pyotp) plugs in here; the login view calls only these two methods."""

    def required(self, user: User) -> bool: ...

    def verify(self, user: User, otp: str) -> bool: ...


class NoMfa:
    """Until TOTP lands: no second factor is asked for."""

    def required(self, user: User) -> bool:
        return False

    def verify(self, user: User, otp: str) -> bool:
        return True


def _row(row: object) -> User:
    r = row
    return User(pk=int(r.pk), username=r.username, role=r.role, fhir_user=r.fhir_user,  # type: ignore[attr-defined]
                patient=r.patient, disabled=bool(r.disabled), has_totp=r.totp_secret is not None)  # type: ignore[attr-defined]


class UserStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, username: str, password: str, role: str, *, patient: str | None = None,
            fhir_user: str | None = None) -> User:
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
        with self.engine.begin() as conn:
            if conn.execute(select(auth_user.c.pk).where(auth_user.c.username == username)).first():
                raise UserError(f"user {username!r} already exists")
            conn.execute(insert(auth_user).values(
                username=username, password_hash=hash_secret(password), role=role, fhir_user=fhir_user,
                patient=patient, failed_logins=0, disabled=False, created=int(time.time())))
        user = self.by_username(username)
        assert user is not None
        return user

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

    def authenticate(self, username: str, password: str) -> User | None:
        """The user if the password is right and the account enabled; constant work either way."""
        with self.engine.connect() as conn:
            row = conn.execute(select(auth_user).where(auth_user.c.username == username)).first()
        ok = verify_secret(password, row.password_hash if row else None)
        if not row or not ok or row.disabled:
            return None
        return _row(row)
