"""``telehub onboard``: check a clinic's EHR endpoint against its vendor profile and write the
connection file ``telehub sync`` uses. Exit status 0 when nothing failed, 1 otherwise.

Attach with ``cli.add_command(onboard)`` (from :mod:`fhir_gateway.upstream.onboard.command`).
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

VENDORS = ["epic", "cerner", "athena", "generic-r4"]


@click.command("onboard")
@click.option("--vendor", type=click.Choice(VENDORS), required=True, help="The vendor profile to check against.")
@click.option("--base-url", help="The clinic's FHIR R4 base URL (with --replay: default from replay.toml).")
@click.option("--tenant", help="Name of the clinic connection (default: derived from the vendor).")
@click.option("--client-id", help="The app's client id at the vendor.")
@click.option("--key", "key_file", type=click.Path(dir_okay=False), help="PEM private key (private_key_jwt).")
@click.option("--secret-stdin", is_flag=True, help="Read the client secret from stdin (never written anywhere).")
@click.option("--key-id", help="kid of the key registered with the vendor.")
@click.option("--jku", help="Hosted JWK Set URL (Epic backend apps need one).")
@click.option("--token-url", help="Override the token endpoint the server advertises.")
@click.option("--practice", help="athena practice id (ah-practice).")
@click.option("--scope", "scopes", multiple=True, help="A scope to request (repeat); default: the profile's.")
@click.option("--patient", help="A test patient's id in the EHR; the probes run on it.")
@click.option("--replay", "replay_dir", type=click.Path(file_okay=False, exists=True),
              help="Run offline against a directory of recorded request/response pairs.")
@click.option("--out", "out", type=click.Path(dir_okay=False), help="Also write the report (.html or .json).")
@click.option("--connections-dir", envvar="TELEHUB_CONNECTIONS_DIR", default="var/connections", show_default=True,
              type=click.Path(file_okay=False), help="Where the clinic connection file is written.")
@click.option("--no-connection", is_flag=True, help="Do not write a connection file.")
@click.option("--page-size", default=10, show_default=True, type=click.IntRange(1, 1000),
              help="_count of the probes (small, so that paging is exercised).")
@click.option("--max-pages", default=3, show_default=True, type=click.IntRange(1, 50), help="Pages followed per probe.")
def onboard(vendor: str, base_url: str | None, tenant: str | None, client_id: str | None, key_file: str | None,
            secret_stdin: bool, key_id: str | None, jku: str | None, token_url: str | None, practice: str | None,
            scopes: tuple[str, ...], patient: str | None, replay_dir: str | None, out: str | None,
            connections_dir: str, no_connection: bool, page_size: int, max_pages: int) -> None:
    """Check a clinic's EHR endpoint: discovery, token and scopes, read/search probes, paging, latency."""
    from fhir_gateway.upstream.onboard import render
    from fhir_gateway.upstream.onboard.replay import ReplayError, load_replay, serving
    from fhir_gateway.upstream.onboard.runner import Options
    from fhir_gateway.upstream.onboard.runner import onboard as run
    from fhir_gateway.upstream.onboard.testkeys import throwaway_key

    if key_file and secret_stdin:
        raise click.UsageError("give either --key or --secret-stdin, not both")
    if out and Path(out).suffix.lower() not in (".html", ".htm", ".json"):
        raise click.BadParameter("the report must end in .html or .json", param_hint="--out")
    secret = sys.stdin.readline().strip() if secret_stdin else None
    manifest: dict[str, object] = {}
    replay = None
    if replay_dir:
        try:
            replay = load_replay(replay_dir)
        except ReplayError as exc:
            raise click.ClickException(str(exc)) from None
        manifest = replay.manifest

    def pick(value: str | None, key: str) -> str | None:
        return value if value is not None else (str(manifest[key]) if key in manifest else None)

    base = pick(base_url, "base_url")
    if not base:
        raise click.UsageError("--base-url is required (or a replay.toml with base_url)")
    options = Options(vendor=vendor, base_url=base, tenant=pick(tenant, "tenant") or f"{vendor}-clinic",
                      client_id=pick(client_id, "client_id"), key_file=key_file, secret=secret,
                      key_id=pick(key_id, "key_id"), jku=pick(jku, "jku"), token_url=pick(token_url, "token_url"),
                      practice=pick(practice, "practice"), patient=pick(patient, "patient"),
                      scopes=list(scopes) or None, page_size=page_size, max_pages=max_pages,
                      connections_dir=None if no_connection else connections_dir,
                      mode="replay" if replay else "live")
    if replay is not None:
        if options.key_file is None and options.secret is None:  # offline: any credentials do
            from vendor_profiles import ProfileRegistry

            if ProfileRegistry.load().get(vendor).auth.client_auth == "private_key_jwt":
                options.key_file = throwaway_key(Path(connections_dir) / ".onboard-replay.pem")
            else:
                options.secret = "replay-secret"
        with serving(replay):
            report = run(options, sleep=lambda _s: None, unrecorded=replay.unmatched)
    else:
        report = run(options)
    click.echo(render.to_terminal(report, colour=sys.stdout.isatty()))
    if out:
        text = render.to_json(report) if out.lower().endswith(".json") else render.to_html(report)
        Path(out).write_text(text, encoding="utf-8")
        click.echo(f"report written to {out}")
    if report.status == "fail":
        sys.exit(1)
