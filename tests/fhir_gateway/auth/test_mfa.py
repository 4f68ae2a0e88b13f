"""TOTP second factor (RFC 6238): required roles, single-use codes, the drift window, the secret sealed at rest."""
from __future__ import annotations

import re

import pyotp
import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import select, update

from fhir_gateway.auth.mfa import INTERVAL, TotpSecrets, matching_step, provisioning_uri
from fhir_gateway.auth.signin import GENERIC_ERROR, NOT_ENROLLED_ERROR
from fhir_gateway.auth.tables import auth_user

from .conftest import Env, auth_params, begin_login, otp_for, page_error, pkce, post_login


def code_at(secret: str, now: float, steps: int = 0) -> str:
    return pyotp.TOTP(secret).generate_otp(int(now // INTERVAL) + steps)


def is_consent(resp: object) -> bool:
    return resp.status_code == 200 and 'name="decision" value="allow"' in resp.get_data(as_text=True)  # type: ignore[attr-defined]


def test_physician_needs_the_right_code_once(env: Env) -> None:
    txn = begin_login(env)
    assert env.auth.users.by_username("doc").has_totp  # type: ignore[union-attr]
    wrong = code_at(env.totp["doc"], env.clock(), 10)
    for otp in ("", wrong, "12345", "abcdef"):
        resp = post_login(env, txn, "doc", otp=otp)
        assert resp.status_code == 401 and page_error(resp) == GENERIC_ERROR
    env.auth.users.unlock("doc")  # four failures above; keep this test about codes, not lock-out
    code = otp_for(env, "doc")
    resp = post_login(env, txn, "doc", otp=code)
    assert is_consent(resp) and resp.headers.get("Set-Cookie", "").startswith("telehub_auth_sid=")
    replay = post_login(env, begin_login(env), "doc", otp=code)  # same code, same time step
    assert replay.status_code == 401 and page_error(replay) == GENERIC_ERROR
    assert is_consent(post_login(env, begin_login(env), "doc", otp=otp_for(env, "doc")))


def test_an_older_step_is_refused_after_a_newer_one(sqlite_env: Env) -> None:
    env, secret = sqlite_env, sqlite_env.totp["doc"]
    now = env.clock()
    assert is_consent(post_login(env, begin_login(env), "doc", otp=code_at(secret, now, +1)))
    for steps in (0, -1):  # still inside the window, but not newer than the step already used
        assert post_login(env, begin_login(env), "doc", otp=code_at(secret, now, steps)).status_code == 401


def test_drift_window_is_one_step(sqlite_env: Env) -> None:
    env, secret = sqlite_env, sqlite_env.totp["doc"]
    txn = begin_login(env)
    now = env.clock()
    assert post_login(env, txn, "doc", otp=code_at(secret, now, -2)).status_code == 401
    assert post_login(env, txn, "doc", otp=code_at(secret, now, +2)).status_code == 401
    assert is_consent(post_login(env, txn, "doc", otp=code_at(secret, now, -1)))


def test_patient_without_totp_signs_in_without_a_code(env: Env) -> None:
    assert not env.auth.users.by_username("pat").has_totp  # type: ignore[union-attr]
    assert is_consent(post_login(env, begin_login(env), "pat", otp=""))


def test_patient_who_opted_in_needs_a_code(sqlite_env: Env) -> None:
    env = sqlite_env
    added = env.auth.users.add("pat2", "correct horse", "patient", patient="p2", totp=True)
    assert added.totp_secret and added.totp_uri and added.totp_uri.startswith("otpauth://totp/")
    assert added.totp_secret not in repr(added)
    env.totp["pat2"] = added.totp_secret
    txn = begin_login(env)
    assert post_login(env, txn, "pat2", otp="").status_code == 401
    assert is_consent(post_login(env, txn, "pat2", otp=otp_for(env, "pat2")))


def test_clinical_roles_are_always_enrolled(sqlite_env: Env) -> None:
    for role in ("physician", "nurse", "admin"):
        assert sqlite_env.auth.users.add(f"u-{role}", "correct horse", role).totp_secret
    for role in ("front_desk", "auditor"):
        assert sqlite_env.auth.users.add(f"u-{role}", "correct horse", role).totp_secret is None


def test_physician_without_totp_is_told_to_contact_an_administrator(sqlite_env: Env) -> None:
    env = sqlite_env
    with env.auth.engine.begin() as conn:  # e.g. a user created before TOTP was required
        conn.execute(update(auth_user).where(auth_user.c.username == "doc").values(totp_secret=None))
    txn = begin_login(env)
    resp = post_login(env, txn, "doc", otp="123456")
    assert resp.status_code == 401 and page_error(resp) == NOT_ENROLLED_ERROR
    assert "administrator" in NOT_ENROLLED_ERROR
    assert page_error(post_login(env, txn, "doc", password="wrong password")) == GENERIC_ERROR  # no hint then
    enrolled = env.auth.users.enrol_totp("doc")
    assert enrolled.totp_secret
    env.totp["doc"] = enrolled.totp_secret
    assert is_consent(post_login(env, txn, "doc", otp=otp_for(env, "doc")))


def test_secret_is_sealed_and_bound_to_its_user(sqlite_env: Env) -> None:
    env = sqlite_env
    secret = env.totp["doc"]
    with env.auth.engine.connect() as conn:
        row = conn.execute(select(auth_user).where(auth_user.c.username == "doc")).one()
    blob = bytes(row.totp_secret)
    assert secret.encode() not in blob and secret not in repr(tuple(row))
    assert len(blob) == 12 + len(secret) + 16  # nonce || ciphertext || GCM tag
    sealer = TotpSecrets(lambda: b"k" * 32)
    assert sealer.open("doc", blob) == secret
    with pytest.raises(InvalidTag):
        sealer.open("pat", blob)  # the AAD binds it to "doc"
    with pytest.raises(InvalidTag):
        TotpSecrets(lambda: b"x" * 32).open("doc", blob)
    with env.auth.engine.begin() as conn:  # copied onto another row, it does not open: a refusal, not a 500
        conn.execute(update(auth_user).where(auth_user.c.username == "pat").values(totp_secret=blob))
    resp = post_login(env, begin_login(env), "pat", otp=pyotp.TOTP(secret).now())
    assert resp.status_code == 401 and page_error(resp) == GENERIC_ERROR


def test_matching_step_and_uri() -> None:
    secret = pyotp.random_base32()
    now = 1_700_000_000.0
    step = int(now // INTERVAL)
    assert matching_step(secret, code_at(secret, now), now) == step
    code = code_at(secret, now)
    assert matching_step(secret, f"{code[:3]} {code[3:]}", now) == step  # spaces as apps display them
    assert matching_step(secret, code_at(secret, now, 1), now) == step + 1
    assert matching_step(secret, code_at(secret, now, 2), now) is None
    assert matching_step(secret, "", now) is None and matching_step(secret, "12a456", now) is None
    uri = provisioning_uri("doc", secret)
    parsed = pyotp.parse_uri(uri)
    assert parsed.issuer == "Telehub" and parsed.name == "doc" and parsed.secret == secret


def test_login_form_is_accessible_without_javascript(sqlite_env: Env) -> None:
    resp = sqlite_env.client.get("/fhir/auth/authorize", query_string=auth_params(pkce()[1]))
    html = resp.get_data(as_text=True)
    assert "<script" not in html
    for name, complete in (("username", "username"), ("password", "current-password"), ("otp", "one-time-code")):
        assert f'<label for="{name}">' in html
        field = re.search(rf'<input [^>]*name="{name}"[^>]*>', html)
        assert field and f'autocomplete="{complete}"' in field.group(0) and f'id="{name}"' in field.group(0)
    otp_field = re.search(r'<input [^>]*name="otp"[^>]*>', html)
    assert otp_field and 'inputmode="numeric"' in otp_field.group(0) and "required" not in otp_field.group(0)
