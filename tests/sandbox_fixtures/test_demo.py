"""``telehub demo`` set-up: demo users shown once, reset, the banner, flavours.toml validation, dev-only refusals."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pyotp
import pytest
from click.testing import CliRunner

from fhir_gateway.auth.mfa import TotpMfa
from fhir_gateway.auth.signin import Outcome, sign_in
from fhir_gateway.cli import main
from fhir_gateway.demo import (
    CLI_CLIENT,
    PATIENT,
    PHYSICIAN,
    DemoRefused,
    auth_services,
    banner,
    seed_demo_data,
    seed_demo_users,
)
from sandbox_fixtures.sandbox.flavours import FlavourError, load_flavours
from tests.sandbox_fixtures.conftest import make_settings


def test_demo_users_are_created_once_and_can_be_reset(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    seed_demo_data(settings)
    first = {u.username: u for u in seed_demo_users(settings)}
    assert set(first) == {PHYSICIAN, PATIENT}
    doc = first[PHYSICIAN]
    assert doc.role == "physician" and doc.fhir_user and doc.fhir_user.startswith("Practitioner/")
    assert doc.password and doc.totp_secret and doc.totp_uri and doc.totp_uri.startswith("otpauth://totp/")
    assert first[PATIENT].password and first[PATIENT].totp_secret is None
    again = seed_demo_users(settings)
    assert all(u.password is None and u.totp_secret is None for u in again)  # shown once only
    _services, auth = auth_services(settings)
    assert auth.clients.get(CLI_CLIENT) is not None
    ok = sign_in(auth.users, TotpMfa(auth.users), PHYSICIAN, doc.password, pyotp.TOTP(doc.totp_secret).now())
    assert ok.outcome is Outcome.OK
    reset = {u.username: u for u in seed_demo_users(settings, reset=True)}
    assert reset[PHYSICIAN].password != doc.password and reset[PHYSICIAN].totp_secret != doc.totp_secret
    stale = sign_in(auth.users, TotpMfa(auth.users), PATIENT, first[PATIENT].password or "", "")
    assert stale.outcome is Outcome.BAD_PASSWORD
    _services.repository.engine.dispose()


def test_banner_shows_urls_and_secrets_only_when_given(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    seed_demo_data(settings)
    users = seed_demo_users(settings)
    text = banner("http://127.0.0.1:8080", users)
    assert "http://127.0.0.1:8080/sandbox" in text and "http://127.0.0.1:8080/fhir" in text
    assert users[0].totp_secret and users[0].totp_secret in text and "shown once" in text
    later = banner("http://127.0.0.1:8080", seed_demo_users(settings))
    assert "otpauth://" not in later and users[0].totp_secret not in later and "--reset-demo-users" in later
    assert all(u.password and u.password not in later for u in users)


def test_demo_users_are_refused_in_production(tmp_path: Path) -> None:
    with pytest.raises(DemoRefused):
        seed_demo_users(replace(make_settings(tmp_path), env="prod"))


def test_demo_command_is_refused_in_production(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demo"], env={
        "TELEHUB_ENV": "prod", "TELEHUB_AUTH": "smart", "TELEHUB_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    assert result.exit_code != 0 and "refused when TELEHUB_ENV=prod" in result.output


def test_sandbox_is_refused_in_production(tmp_path: Path) -> None:
    from fhir_gateway.app import create_app
    from sandbox_fixtures.sandbox.app import SandboxRefused
    from sandbox_fixtures.sandbox.wsgi import mount

    hub = create_app(replace(make_settings(tmp_path), env="prod"))
    try:
        with pytest.raises(SandboxRefused):
            mount(hub)
    finally:
        hub.extensions["telehub.fhir"].repository.engine.dispose()


def test_bad_flavour_file_names_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "flavours.toml"
    bad.write_text('[acme]\nlabel = "Acme"\nfhir_prefix = "fhir"\npaging = { style = "pages" }\n')
    with pytest.raises(FlavourError, match=r"\[acme\] paging.style"):
        load_flavours(bad)
    bad.write_text('[acme]\nlabel = "Acme"\nfhir_prefix = "r4/{tenant}"\n')
    with pytest.raises(FlavourError, match="tenant"):
        load_flavours(bad)


def test_shipped_flavours_load() -> None:
    flavours = load_flavours()
    assert set(flavours) == {"generic", "epic", "cerner", "athena"}
    assert flavours["cerner"].base_path == "/cerner/r4/ec2458f2-1e24-41c8-b71b-0e701af7583d"
