"""``telehub clients …`` and ``telehub users …`` (click groups; the lead adds them to cli.py).

Both build the auth services from settings the same way the app does; they never print secrets
(the one exception: a TOTP provisioning URI, shown once when a user is enrolled).
"""
from __future__ import annotations

import json
import sys
from typing import Any

import click

from fhir_gateway.auth.clients import ASYMMETRIC, PUBLIC, SYMMETRIC, ClientError
from fhir_gateway.auth.registration_cli import initial_token
from fhir_gateway.auth.users import ROLES, UserError, UserStore


def app_services(*, ensure_keys: bool = True) -> tuple[Any, Any]:
    """The FHIR and auth services exactly as the app builds them: same database, same key ring, so signing
    keys and sealed TOTP secrets written here are readable by the server (and the other way round)."""
    from fhir_gateway.app import build_services, signing_key_provider
    from fhir_gateway.auth import build_services as build_auth_services
    from fhir_gateway.settings import load_settings

    settings = load_settings()
    services = build_services(settings)
    return services, build_auth_services(settings, services.repository.engine,
                                         key_provider=signing_key_provider(services), ensure_keys=ensure_keys)


def app_auth_services(*, ensure_keys: bool = True) -> Any:
    return app_services(ensure_keys=ensure_keys)[1]


def _services() -> Any:
    return app_auth_services()


@click.group("clients", help="Register, list and remove SMART clients.")
def clients() -> None:
    pass


@clients.command("add")
@click.option("--id", "client_id", required=True)
@click.option("--public", "kind", flag_value=PUBLIC)
@click.option("--secret-stdin", "kind", flag_value=SYMMETRIC, help="read the client secret from stdin")
@click.option("--jwks-url", default=None)
@click.option("--jwks-file", type=click.File("r"), default=None)
@click.option("--redirect-uri", "redirect_uris", multiple=True)
@click.option("--scope", default="")
@click.option("--launch-uri", default=None)
@click.option("--name", default=None)
def add_client(client_id: str, kind: str | None, jwks_url: str | None, jwks_file: Any, redirect_uris: tuple[str, ...],
               scope: str, launch_uri: str | None, name: str | None) -> None:
    if jwks_url or jwks_file:
        kind = ASYMMETRIC
    if kind is None:
        raise click.UsageError("one of --public, --secret-stdin, --jwks-url, --jwks-file is required")
    secret = sys.stdin.readline().strip() if kind == SYMMETRIC else None
    try:
        c = _services().clients.add(client_id, client_type=kind, redirect_uris=list(redirect_uris), scope=scope,
                                    secret=secret, jwks=json.load(jwks_file) if jwks_file else None,
                                    jwks_uri=jwks_url, launch_uri=launch_uri, name=name)
    except ClientError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"added {c.client_type} client {c.client_id}")


@clients.command("list")
def list_clients() -> None:
    for c in _services().clients.list():
        click.echo(json.dumps(c.as_dict()))


@clients.command("remove")
@click.option("--id", "client_id", required=True)
def remove_client(client_id: str) -> None:
    if not _services().clients.remove(client_id):
        raise click.ClickException(f"no client {client_id}")
    click.echo(f"removed {client_id}")


@click.group("users", help="Add, list, enrol, unlock and disable users of the login page.")
def users() -> None:
    pass


def _user_store() -> UserStore:
    """The users as the app sees them: TOTP secrets are sealed under the app's key provider (from the key ring)."""
    users: UserStore = app_auth_services(ensure_keys=False).users
    return users


def _show_totp(uri: str | None) -> None:
    """The provisioning URI, once, on stdout (it holds the secret); the instructions go to stderr."""
    if uri:
        click.echo("Scan this URI (or its QR code) into the user's authenticator app; it is not shown again:",
                   err=True)
        click.echo(uri)


@users.command("add")
@click.option("--username", required=True)
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--patient", default=None, help="Patient/ID for a patient user")
@click.option("--practitioner", default=None, help="Practitioner/ID (the fhirUser)")
@click.option("--totp", is_flag=True, help="enrol a TOTP authenticator (implied for physician, nurse and admin)")
def add_user(username: str, role: str, patient: str | None, practitioner: str | None, totp: bool) -> None:
    """Add a user; the password is read from the first line of stdin."""
    password = sys.stdin.readline().rstrip("\n")
    try:
        u = _user_store().add(username, password, role, patient=patient, fhir_user=practitioner, totp=totp)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"added {u.role} {u.username}" + (" with TOTP" if u.totp_secret else ""))
    _show_totp(u.totp_uri)


@users.command("enrol-totp")
@click.option("--username", required=True)
def enrol_totp(username: str) -> None:
    """Give the user a new TOTP secret (a lost phone, or a user added before TOTP was required)."""
    try:
        u = _user_store().enrol_totp(username)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"enrolled TOTP for {u.username}")
    _show_totp(u.totp_uri)


@users.command("list")
def list_users() -> None:
    for u in _user_store().list():
        click.echo(json.dumps({"username": u.username, "role": u.role, "fhirUser": u.fhir_user,
                               "patient": u.patient, "disabled": u.disabled, "totp": u.has_totp}))


@users.command("unlock")
@click.option("--username", required=True)
def unlock_user(username: str) -> None:
    """Clear the failed-sign-in count and any lock-out."""
    if not _user_store().unlock(username):
        raise click.ClickException(f"no user {username}")
    click.echo(f"unlocked {username}")


@users.command("disable")
@click.option("--username", required=True)
def disable_user(username: str) -> None:
    if not _user_store().disable(username):
        raise click.ClickException(f"no user {username}")
    click.echo(f"disabled {username}")


clients.add_command(initial_token)
