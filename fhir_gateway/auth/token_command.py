"""``telehub token``: mint an access token with the server's own keys, for operators and scripts (audited)."""
from __future__ import annotations

import click

from fhir_gateway.access import RequestContext
from fhir_gateway.audit.events import AuditInput


@click.command("token")
@click.option("--client-id", required=True, help="A registered client the token is issued to.")
@click.option("--scope", required=True, help='Scopes, e.g. "system/*.cruds" or "patient/*.rs".')
@click.option("--patient", help="Patient id for the token's patient context.")
@click.option("--user", "username", help="A user whose role and fhirUser the token carries.")
@click.option("--lifetime", type=int, help="Seconds (default: 1 h with --user, else 5 min).")
def token(client_id: str, scope: str, patient: str | None, username: str | None, lifetime: int | None) -> None:
    """Print a bare access token on stdout."""
    from fhir_gateway.auth.commands import app_services
    from fhir_gateway.auth.scopes import ScopeSyntaxError, parse_scopes

    services, auth = app_services()
    if auth.clients.get(client_id) is None:
        raise click.ClickException(f"no client {client_id!r} is registered (telehub clients add)")
    try:
        parse_scopes(scope)
    except ScopeSyntaxError as exc:
        raise click.ClickException(f"invalid scope: {exc}") from None
    user = None
    if username:
        user = auth.users.by_username(username)
        if user is None or user.disabled:
            raise click.ClickException(f"no active user {username!r}")
    context = {"patient": patient} if patient else {}
    body = auth.tokens.issue(client_id=client_id, user=user, scope=scope, context=context, refresh=False,
                             lifetime=lifetime)
    if services.audit is not None:
        with services.repository.transaction(write=True) as conn:
            services.audit.append(conn, AuditInput(
                "token", 200, RequestContext(client_id=client_id, user=username, role="operator"),
                patients={patient} if patient else set(), description="access token minted by telehub token"))
    click.echo(body["access_token"])
