"""``telehub clients add`` then ``telehub token`` before the server ever started: the signing keys the CLI
creates are the server's own (same key ring), so the minted token works on the FHIR API."""
from __future__ import annotations

from click.testing import CliRunner

from fhir_gateway.app import create_app
from fhir_gateway.auth.commands import clients
from fhir_gateway.auth.token_command import token
from tests.fhir_gateway.conftest import make_settings

from .test_users_cli import cli_env  # noqa: F401  (fixture)


def test_cli_client_and_token_work_on_a_server_started_later(sqlite_url: str,
                                                             cli_env: dict[str, str | None]) -> None:  # noqa: F811
    runner = CliRunner()
    added = runner.invoke(clients, ["add", "--id", "ops", "--public", "--redirect-uri", "https://ops.example/cb",
                                    "--scope", "system/*.rs"], env=cli_env, catch_exceptions=False)
    assert added.exit_code == 0, added.output
    minted = runner.invoke(token, ["--client-id", "ops", "--scope", "system/*.rs"], env=cli_env,
                           catch_exceptions=False)
    assert minted.exit_code == 0, minted.output
    bearer = minted.stdout.strip()
    assert bearer.count(".") == 2 and "\n" not in bearer
    app = create_app(make_settings(sqlite_url, auth="smart"))
    resp = app.test_client().get("/fhir/Patient", headers={"Authorization": f"Bearer {bearer}"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    listed = runner.invoke(clients, ["list"], env=cli_env, catch_exceptions=False)
    assert "ops" in listed.stdout and "secret" not in listed.stdout.lower()
    app.extensions["telehub.fhir"].repository.engine.dispose()
