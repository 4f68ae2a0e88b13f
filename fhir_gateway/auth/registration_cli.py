"""``telehub clients initial-token``: issue an initial access token for dynamic client registration (RFC 7591 §3).

The token is printed once on stdout (so scripts can capture it) and only its SHA-256 is stored; the
details go to stderr. The lead attaches :data:`initial_token` to the ``clients`` group.
"""
from __future__ import annotations

import datetime as dt

import click
from sqlalchemy import Engine

from fhir_gateway.auth.scopes import ScopeSyntaxError, parse_scopes

MAX_LIFETIME = 90 * 86400


def _engine() -> Engine:
    """The migrated database of the configured settings (as the other ``telehub clients`` commands use)."""
    from fhir_gateway.settings import load_settings
    from fhir_gateway.storage.engine import make_engine
    from fhir_gateway.storage.migrate import upgrade

    engine = make_engine(load_settings().database_url)
    upgrade(engine)
    return engine


@click.command("initial-token")
@click.option("--expires-in", type=click.IntRange(60, MAX_LIFETIME), default=86400, show_default=True,
              help="Seconds the token is valid.")
@click.option("--scope-ceiling", default=None,
              help='Most a registered client may hold, e.g. "openid fhirUser launch/patient patient/*.rs"; '
                   "requested scopes are narrowed to it. Without it any valid SMART scope may be registered.")
@click.option("--uses", type=click.IntRange(1, 10_000), default=1, show_default=True,
              help="How many clients the token may register.")
def initial_token(expires_in: int, scope_ceiling: str | None, uses: int) -> None:
    """Print a new initial access token for POST …/auth/register (shown only this once)."""
    from fhir_gateway.auth.registration_store import RegistrationStore

    ceiling = None
    if scope_ceiling is not None:
        try:
            ceiling = " ".join(parse_scopes(scope_ceiling, strict=True).raw) or None
        except ScopeSyntaxError as exc:
            raise click.BadParameter(str(exc), param_hint="--scope-ceiling") from None
        if ceiling is None:
            raise click.BadParameter("must name at least one scope", param_hint="--scope-ceiling")
    engine = _engine()
    try:
        token = RegistrationStore(engine).issue_initial(expires_in=expires_in, scope_ceiling=ceiling, uses=uses)
    finally:
        engine.dispose()
    until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=expires_in)
    click.echo(token)
    click.echo(f"initial access token for {uses} registration(s), valid until {until:%Y-%m-%dT%H:%M:%SZ}, "
               f"scope ceiling: {ceiling or 'none'}", err=True)
