"""The sign-in rules behind the login page: password, lock-out with back-off, second factor.

No Flask here: :func:`sign_in` is a function of the user store, the MFA verifier and the form
values, so the rules are unit-tested without a request. The user sees one generic message for
every refusal (unknown user, wrong password, wrong or missing code, locked, disabled) so the page
does not tell which usernames exist (OWASP ASVS 2.2, NIST SP 800-63B §5.2.2); the distinct
:class:`Outcome` goes to the log, with the user's key and never the username or password.

Lock-out: after :data:`THRESHOLD` consecutive failures the account is locked for
``BASE_LOCK * 2**(failures - THRESHOLD)`` seconds, capped at :data:`MAX_LOCK`; attempts while
locked are refused without counting, and a successful sign-in resets the count.
"""
from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from fhir_gateway.auth.passwords import verify_secret
from fhir_gateway.auth.users import MfaVerifier, User, UserStore

log = logging.getLogger("telehub.auth")

THRESHOLD = 5
BASE_LOCK = 60
MAX_LOCK = 3600

GENERIC_ERROR = ("We could not sign you in. Check your username, password and one-time code and try again; "
                 "after several failed attempts, wait a few minutes before trying again.")
NOT_ENROLLED_ERROR = ("Your account needs a second sign-in step (an authenticator app) that has not been set up. "
                      "Contact an administrator to enrol you.")


class Outcome(enum.StrEnum):
    OK = "ok"
    UNKNOWN_USER = "unknown_user"
    BAD_PASSWORD = "bad_password"
    DISABLED = "disabled"
    LOCKED = "locked"
    OTP_MISSING = "otp_missing"
    BAD_OTP = "bad_otp"
    NOT_ENROLLED = "mfa_not_enrolled"


@dataclass(frozen=True)
class SignInResult:
    outcome: Outcome
    user: User | None = None

    @property
    def message(self) -> str | None:
        """What the page shows: nothing on success, the enrolment hint, else the one generic text."""
        if self.outcome is Outcome.OK:
            return None
        return NOT_ENROLLED_ERROR if self.outcome is Outcome.NOT_ENROLLED else GENERIC_ERROR


def lock_seconds(failures: int) -> int:
    """How long the account locks after ``failures`` consecutive failures (0: not locked)."""
    if failures < THRESHOLD:
        return 0
    return int(min(BASE_LOCK * 2 ** min(failures - THRESHOLD, 16), MAX_LOCK))


def _fail(users: UserStore, user: User, outcome: Outcome) -> SignInResult:
    failures = users.record_failure(user.pk)
    seconds = lock_seconds(failures)
    if seconds:
        users.lock(user.pk, int(users.clock()) + seconds)
        log.warning("auth: user %s locked for %ss after %s consecutive failed sign-ins", user.pk, seconds, failures)
    log.info("auth: sign-in refused: %s (user %s)", outcome, user.pk)
    return SignInResult(outcome)


def sign_in(users: UserStore, mfa: MfaVerifier, username: str, password: str, otp: str) -> SignInResult:
    """Apply the rules in order; the password hash is computed even for unknown users (constant work)."""
    account = users.account(username) if username else None
    password_ok = verify_secret(password, account.password_hash if account else None)
    if account is None:
        log.info("auth: sign-in refused: %s", Outcome.UNKNOWN_USER)
        return SignInResult(Outcome.UNKNOWN_USER)
    user = account.user
    if user.disabled:
        log.info("auth: sign-in refused: %s (user %s)", Outcome.DISABLED, user.pk)
        return SignInResult(Outcome.DISABLED)
    if account.locked_until is not None and account.locked_until > users.clock():
        log.info("auth: sign-in refused: %s (user %s)", Outcome.LOCKED, user.pk)
        return SignInResult(Outcome.LOCKED)
    if not password_ok:
        return _fail(users, user, Outcome.BAD_PASSWORD)
    if mfa.required(user):
        if not mfa.enrolled(user):
            log.info("auth: sign-in refused: %s (user %s)", Outcome.NOT_ENROLLED, user.pk)
            return SignInResult(Outcome.NOT_ENROLLED)
        if not otp.strip():
            return _fail(users, user, Outcome.OTP_MISSING)
        if not mfa.verify(user, otp):
            return _fail(users, user, Outcome.BAD_OTP)
    users.record_success(user.pk)
    return SignInResult(Outcome.OK, user)
