"""``telehub clients …`` and ``telehub users …`` (click groups; the lead adds them to cli.py).

Both build the auth services from settings the same way the app does; they never print secrets.
"""
from __future__ import annotations

import json
import sys
from typing import Any

import click

from fhir_gateway.auth.clients import ASYMMETRIC, PUBLIC, SYMMETRIC, ClientError
from fhir_gateway.auth.users import ROLES, UserError


def _services() -> Any:
    from fhir_gateway.auth import build_services
    from fhir_gateway.settings import load_settings
    from fhir_gateway.storage.engine import make_engine
    from fhir_gateway.storage.migrate import upgrade

    settings = load_settings()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    return build_services(settings, engine)


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


@click.group("users", help="Add, list and disable users of the login page.")
def users() -> None:
    pass


@users.command("add")
@click.option("--username", required=True)
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--patient", default=None, help="Patient/ID for a patient user")
@click.option("--practitioner", default=None, help="Practitioner/ID (the fhirUser)")
def add_user(username: str, role: str, patient: str | None, practitioner: str | None) -> None:
    password = sys.stdin.readline().rstrip("\n")
    try:
        u = _services().users.add(username, password, role, patient=patient, fhir_user=practitioner)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"added {u.role} {u.username}")


@users.command("list")
def list_users() -> None:
    for u in _services().users.list():
        click.echo(json.dumps({"username": u.username, "role": u.role, "fhirUser": u.fhir_user,
                               "patient": u.patient, "disabled": u.disabled}))


@users.command("disable")
@click.option("--username", required=True)
def disable_user(username: str) -> None:
    if not _services().users.disable(username):
        raise click.ClickException(f"no user {username}")
    click.echo(f"disabled {username}")
