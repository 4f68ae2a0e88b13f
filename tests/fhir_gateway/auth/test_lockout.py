"""Lock-out with exponential back-off, one generic error for every refusal, disabled users, the sign-in rules."""
from __future__ import annotations

import logging

import pyotp
import pytest
from sqlalchemy import select, update

from fhir_gateway.auth import ratelimit
from fhir_gateway.auth.ratelimit import Limit, Limits, MemoryCounter, Throttle
from fhir_gateway.auth.signin import GENERIC_ERROR, MAX_LOCK, THRESHOLD, Outcome, lock_seconds, sign_in
from fhir_gateway.auth.tables import auth_user

from .conftest import Env, begin_login, otp_for, page_error, post_login


@pytest.fixture(autouse=True)
def no_rate_limits(request: pytest.FixtureRequest) -> None:
    """These tests make many attempts for one username; rate limits have their own tests."""
    for name in ("env", "sqlite_env"):
        if name in request.fixturenames:
            env: Env = request.getfixturevalue(name)
            big = Limit("x", 10_000, 60)
            ratelimit.init_app(env.app, None, throttle=Throttle(MemoryCounter(), Limits(big, big, big)))


def state(env: Env, username: str) -> tuple[int, int | None]:
    with env.auth.engine.connect() as conn:
        row = conn.execute(select(auth_user.c.failed_logins, auth_user.c.locked_until)
                           .where(auth_user.c.username == username)).one()
    return int(row.failed_logins), row.locked_until


def test_back_off_schedule() -> None:
    assert [lock_seconds(n) for n in range(THRESHOLD)] == [0] * THRESHOLD
    assert [lock_seconds(n) for n in range(5, 12)] == [60, 120, 240, 480, 960, 1920, 3600]
    assert lock_seconds(10_000) == MAX_LOCK == 3600


def test_lockout_after_five_failures_then_time_unlocks(env: Env) -> None:
    txn = begin_login(env)
    for i in range(1, THRESHOLD + 1):
        resp = post_login(env, txn, "doc", password="wrong password", otp=otp_for(env, "doc"))
        assert resp.status_code == 401 and page_error(resp) == GENERIC_ERROR
        assert state(env, "doc")[0] == i
    failures, until = state(env, "doc")
    assert until == int(env.clock()) + 60
    locked = post_login(env, txn, "doc", otp=otp_for(env, "doc"))  # right password and code, but locked
    assert locked.status_code == 401 and page_error(locked) == GENERIC_ERROR
    assert state(env, "doc") == (failures, until)  # attempts while locked are not counted
    env.clock.now = until + 1  # otp_for moves the clock on by one step more
    resp = post_login(env, txn, "doc", otp=otp_for(env, "doc"))
    assert resp.status_code == 200 and 'value="allow"' in resp.get_data(as_text=True)
    assert state(env, "doc") == (0, None)


def test_lock_grows_and_is_capped(sqlite_env: Env) -> None:
    env = sqlite_env
    txn = begin_login(env)
    periods = []
    for _ in range(THRESHOLD - 1):
        post_login(env, txn, "pat", password="wrong password")
    for _ in range(8):
        post_login(env, txn, "pat", password="wrong password")
        _, until = state(env, "pat")
        assert until is not None
        periods.append(until - int(env.clock()))
        env.clock.now = until  # the lock has just ended: the next failure locks again, for longer
    assert periods == [60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_success_resets_the_count(sqlite_env: Env) -> None:
    env = sqlite_env
    txn = begin_login(env)
    for _ in range(THRESHOLD - 1):
        post_login(env, txn, "pat", password="wrong password")
    assert post_login(env, txn, "pat").status_code == 200
    assert state(env, "pat") == (0, None)
    for _ in range(THRESHOLD - 1):
        post_login(env, txn, "pat", password="wrong password")
    assert state(env, "pat") == (THRESHOLD - 1, None)


def test_every_refusal_reads_the_same(sqlite_env: Env, caplog: pytest.LogCaptureFixture) -> None:
    env = sqlite_env
    env.auth.users.add("gone", "correct horse", "patient", patient="p9")
    env.auth.users.disable("gone")
    env.auth.users.add("stuck", "correct horse", "patient", patient="p8")
    with env.auth.engine.begin() as conn:
        conn.execute(update(auth_user).where(auth_user.c.username == "stuck")
                     .values(failed_logins=THRESHOLD, locked_until=int(env.clock()) + 600))
    txn = begin_login(env)
    attempts = {
        Outcome.UNKNOWN_USER: ("nobody", "correct horse", ""),
        Outcome.BAD_PASSWORD: ("pat", "wrong password", ""),
        Outcome.OTP_MISSING: ("doc", "correct horse", ""),
        Outcome.BAD_OTP: ("doc", "correct horse", pyotp.TOTP(env.totp["doc"]).generate_otp(int(env.clock() // 30) + 9)),
        Outcome.LOCKED: ("stuck", "correct horse", ""),
        Outcome.DISABLED: ("gone", "correct horse", ""),
    }
    pages = set()
    with caplog.at_level(logging.INFO, logger="telehub.auth"):
        for outcome, (username, password, otp) in attempts.items():
            caplog.clear()
            resp = post_login(env, txn, username, password=password, otp=otp)
            assert resp.status_code == 401
            html = resp.get_data(as_text=True)
            pages.add(html)
            assert page_error(resp) == GENERIC_ERROR
            assert any(f"sign-in refused: {outcome}" in r.getMessage() for r in caplog.records), outcome
            assert all(username not in r.getMessage() and password not in r.getMessage() for r in caplog.records)
    assert len(pages) == 1  # byte-identical pages: nothing tells the cases apart


def test_disabled_user_cannot_sign_in_even_with_everything_right(sqlite_env: Env) -> None:
    env = sqlite_env
    env.auth.users.disable("doc")
    resp = post_login(env, begin_login(env), "doc", otp=otp_for(env, "doc"))
    assert resp.status_code == 401 and page_error(resp) == GENERIC_ERROR


def test_sign_in_rules_without_flask(sqlite_env: Env) -> None:
    users, mfa = sqlite_env.auth.users, sqlite_env.auth.mfa
    assert sign_in(users, mfa, "", "", "").outcome is Outcome.UNKNOWN_USER
    ok = sign_in(users, mfa, "pat", "correct horse", "")
    assert ok.outcome is Outcome.OK and ok.user is not None and ok.user.username == "pat" and ok.message is None
    assert sign_in(users, mfa, "doc", "correct horse", otp_for(sqlite_env, "doc")).outcome is Outcome.OK
