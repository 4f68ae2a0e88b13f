"""configure_logging(): installed everywhere, idempotent; Authlib's DEBUG token logging is held back and scrubbed."""
from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from flask import Flask

from fhir_gateway.observability import configure_logging, unconfigure_logging
from fhir_gateway.observability.log_filter import PhiScrubFilter
from fhir_gateway.settings import Settings

ACCESS = ("eyJhbGciOiJSUzM4NCJ9.eyJzdWIiOiJjbGllbnQiLCJwYXRpZW50IjoiNDIiLCJzY29wZSI6InN5c3RlbS8qLnJzIn0"
          ".Zm9yZ2VkLXNpZ25hdHVyZQ")
CLIENT_SECRET = "Wq3pLr8sTn2vXz6bYc4dKf7gHj9mNa1e"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    names = ("authlib", "authlib.oauth2.rfc6749.grants.client_credentials")
    saved = (root.level, list(root.handlers), {n: logging.getLogger(n).level for n in names})
    factory = logging.getLogRecordFactory()
    yield
    unconfigure_logging()
    logging.setLogRecordFactory(factory)
    root.setLevel(saved[0])
    for handler in list(root.handlers):
        if handler not in saved[1]:
            root.removeHandler(handler)
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


class _Client(ClientMixin):  # type: ignore[misc]  # Authlib ships no type hints
    client_id = "backend-service"

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str) -> str:
        return scope

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return client_secret == CLIENT_SECRET

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "client_secret_basic"

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


def _token_server() -> Flask:
    """A real Authlib authorization server issuing a JWT access token by client credentials."""
    app = Flask("authlib-probe")
    server = AuthorizationServer(app, query_client=lambda cid: _Client() if cid == _Client.client_id else None,
                                 save_token=lambda token, request: None)

    def generate(**kw: Any) -> dict[str, Any]:
        return {"token_type": "Bearer", "access_token": ACCESS, "expires_in": 300, "scope": kw["scope"],
                "patient": "mrn-778899"}

    server.register_token_generator("default", generate)
    server.register_grant(grants.ClientCredentialsGrant)

    @app.post("/token")
    def _token() -> Any:
        return server.create_token_response()

    return app


def _issue_token(app: Flask) -> dict[str, Any]:
    basic = base64.b64encode(f"{_Client.client_id}:{CLIENT_SECRET}".encode()).decode()
    resp = app.test_client().post("/token", data={"grant_type": "client_credentials", "scope": "system/*.rs"},
                                  headers={"Authorization": f"Basic {basic}"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body: dict[str, Any] = resp.get_json()
    return body


def test_authlib_token_logging_is_held_at_info(restore_logging: None) -> None:
    logging.getLogger("authlib").setLevel(logging.DEBUG)  # as a developer chasing a login bug might leave it
    stream = io.StringIO()
    configure_logging(Settings(env="test", extra={"log_level": "DEBUG"}), stream=stream)
    assert logging.getLogger("authlib").getEffectiveLevel() == logging.INFO
    assert _issue_token(_token_server())["access_token"] == ACCESS
    assert "Issue token" not in stream.getvalue()
    assert ACCESS not in stream.getvalue()


def test_authlib_debug_token_logging_is_scrubbed_when_forced_on(restore_logging: None,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    stream = io.StringIO()
    configure_logging(Settings(env="test", extra={"log_level": "DEBUG"}), stream=stream)
    logging.getLogger("authlib").setLevel(logging.DEBUG)  # overridden after set-up: the scrubber still holds
    with caplog.at_level(logging.DEBUG, logger="authlib"):
        assert _issue_token(_token_server())["access_token"] == ACCESS
    out = stream.getvalue()
    assert "Issue token {'token_type': 'Bearer', 'access_token': '[redacted]'" in out  # the real Authlib line
    assert "'patient': '[redacted]'" in out
    captured = "\n".join(r.getMessage() for r in caplog.records)  # other handlers (here pytest's) get it scrubbed too
    assert "Issue token" in captured
    for secret in (ACCESS, ACCESS[:30], "mrn-778899", CLIENT_SECRET):
        assert secret not in out and secret not in captured


def test_configure_is_idempotent_and_keeps_foreign_handlers(restore_logging: None) -> None:
    root = logging.getLogger()
    foreign = logging.StreamHandler(io.StringIO())
    foreign.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root.addHandler(foreign)
    for _ in range(3):
        configure_logging(Settings(env="test"))
    ours = [h for h in root.handlers if getattr(h, "_telehub_handler", False)]
    assert ours == []  # someone configured logging already (e.g. `telehub -v`): no duplicate lines
    assert sum(isinstance(f, PhiScrubFilter) for f in foreign.filters) == 1
    factory = logging.getLogRecordFactory()
    configure_logging(Settings(env="test"))
    assert logging.getLogRecordFactory() is factory  # not wrapped twice
    foreign.setLevel(logging.INFO)
    root.setLevel(logging.INFO)
    logging.getLogger("telehub.test").info("reach me at zebulon@example.org")
    assert "[email]" in foreign.stream.getvalue() and "zebulon" not in foreign.stream.getvalue()
    assert foreign.stream.getvalue().startswith("INFO ")  # the operator's format is kept


def test_prod_drops_exception_messages(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging(Settings(env="prod", auth="smart", extra={"log_level": "INFO"}), stream=stream)
    secret = "Zebulon Quixotic"
    try:
        raise ValueError(secret)
    except ValueError:
        logging.getLogger("telehub.test").exception("validation failed")
    assert "ValueError: [message redacted]" in stream.getvalue()
    assert secret not in stream.getvalue()
