"""``telehub users add|enrol-totp|list|unlock|disable``: the provisioning URI is shown once, the secret never stored
in clear, and a user the CLI enrolled signs in on the app (same key provider as the server)."""
from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import parse_qs, urlparse

import orjson
import pyotp
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from fhir_gateway.app import create_app
from fhir_gateway.auth.commands import users
from fhir_gateway.auth.tables import auth_user
from fhir_gateway.storage.engine import make_engine
from tests.fhir_gateway.conftest import kek_file_for_tests, make_settings

from .conftest import REDIRECT, auth_params, page_error, pkce, txn_of

PASSWORD = "correct horse staple"


@pytest.fixture
def cli_env(sqlite_url: str) -> dict[str, str | None]:
    clean: dict[str, str | None] = {k: None for k in os.environ if k.startswith("TELEHUB_")}
    return {**clean, "TELEHUB_ENV": "test", "TELEHUB_DATABASE_URL": sqlite_url,
            "TELEHUB_BASE_URL": "http://testserver/fhir", "TELEHUB_KEK_FILE": kek_file_for_tests()}


def run(env: dict[str, str | None], *args: str, stdin: str = "") -> Result:
    return CliRunner().invoke(users, list(args), env=env, input=stdin, catch_exceptions=False)


def row_bytes(database_url: str, username: str) -> bytes:
    """Every column of the user's row, as raw bytes (blobs as they are, the rest as text)."""
    engine = make_engine(database_url)
    with engine.connect() as conn:
        row = conn.execute(select(auth_user).where(auth_user.c.username == username)).one()
    engine.dispose()
    return b"|".join(bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in row)


def uri_of(result: Result) -> str:
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("otpauth://")]
    assert len(lines) == 1, result.stdout
    return lines[0]


def test_add_with_totp_prints_the_uri_once_and_stores_no_plaintext(sqlite_url: str,
                                                                     cli_env: dict[str, str | None]) -> None:
    result = run(cli_env, "add", "--username", "carol", "--role", "patient", "--patient", "Patient/p7", "--totp",
                 stdin=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    uri = uri_of(result)
    parsed = urlparse(uri)
    query = parse_qs(parsed.query)
    assert parsed.scheme == "otpauth" and parsed.netloc == "totp" and query["issuer"] == ["Telehub"]
    secret = query["secret"][0]
    assert len(secret) >= 26 and pyotp.parse_uri(uri).name == "carol"
    assert PASSWORD not in result.output and result.stdout.count(secret) == 1
    raw = row_bytes(sqlite_url, "carol")
    for needle in (secret, secret.lower(), PASSWORD):
        assert needle.encode() not in raw
    listed = [orjson.loads(ln) for ln in run(cli_env, "list").stdout.splitlines()]
    assert listed == [{"username": "carol", "role": "patient", "fhirUser": "Patient/p7", "patient": "p7",
                       "disabled": False, "totp": True}]
    assert secret not in run(cli_env, "list").output


def test_totp_implied_for_clinical_roles_and_optional_for_others(cli_env: dict[str, str | None]) -> None:
    nurse = run(cli_env, "add", "--username", "nina", "--role", "nurse", "--practitioner", "Practitioner/n1",
                stdin=PASSWORD + "\n")
    assert nurse.exit_code == 0 and uri_of(nurse).startswith("otpauth://totp/Telehub:nina")
    desk = run(cli_env, "add", "--username", "dave", "--role", "front_desk", stdin=PASSWORD + "\n")
    assert desk.exit_code == 0 and "otpauth://" not in desk.output
    again = run(cli_env, "enrol-totp", "--username", "dave")
    assert again.exit_code == 0 and uri_of(again)
    assert run(cli_env, "enrol-totp", "--username", "nobody").exit_code != 0
    short = run(cli_env, "add", "--username", "x", "--role", "patient", "--patient", "p1", stdin="short\n")
    assert short.exit_code != 0 and "8 characters" in short.output


def test_cli_enrolled_physician_signs_in_on_the_app(sqlite_url: str, cli_env: dict[str, str | None]) -> None:
    result = run(cli_env, "add", "--username", "drew", "--role", "physician", "--practitioner", "Practitioner/d9",
                 stdin=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    totp = pyotp.TOTP(pyotp.parse_uri(uri_of(result)).secret)
    app = create_app(make_settings(sqlite_url, auth="smart"))
    auth: Any = app.extensions["telehub.auth"].services
    auth.clients.add("public-app", client_type="public", redirect_uris=[REDIRECT],
                     scope="openid fhirUser launch/patient patient/*.rs user/*.rs")
    client = app.test_client()
    page = client.get("/fhir/auth/authorize", query_string=auth_params(pkce()[1], scope="openid fhirUser user/*.rs"))
    txn = txn_of(page.get_data(as_text=True))

    def login(otp: str) -> Any:
        return client.post("/fhir/auth/login", data={"txn": txn, "username": "drew", "password": PASSWORD, "otp": otp})

    assert login("").status_code == 401
    ok = login(totp.now())
    assert ok.status_code == 200 and page_error(ok) is None, ok.get_data(as_text=True)
    for _ in range(5):
        login("")
    next_code = totp.at(int(time.time()) + 30)
    assert login(next_code).status_code == 401  # locked
    assert run(cli_env, "unlock", "--username", "drew").stdout.strip() == "unlocked drew"
    assert login(next_code).status_code == 200
    assert run(cli_env, "disable", "--username", "drew").exit_code == 0
    assert auth.users.by_username("drew").disabled
    app.extensions["telehub.fhir"].repository.engine.dispose()
