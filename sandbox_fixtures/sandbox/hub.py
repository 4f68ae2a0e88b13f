"""The hub, called in-process through its own WSGI app: the sandbox speaks FHIR and OAuth to it like any client.

Going through the hub's HTTP surface (not its repository) keeps the hub's access policy, audit trail and
error rendering in force for everything the sandbox shows or proxies.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
from flask import Flask
from werkzeug.test import Client, TestResponse

SANDBOX_CLIENT = "telehub-sandbox-ehr"  # the EHR's own system identity: reads the chart, creates launches
SANDBOX_SCOPE = "launch system/Patient.rs system/Practitioner.rs system/Encounter.rs"
TOKEN_LIFETIME = 300


class HubError(RuntimeError):
    """The hub answered an in-process call with an unexpected status."""


@dataclass(frozen=True)
class HubReply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class Hub:
    """In-process client of the hub app: FHIR under ``fhir_base``, SMART under ``fhir_base/auth``."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        settings = app.extensions["telehub.fhir"].settings
        self.fhir_base: str = settings.fhir_base
        parts = urlsplit(self.fhir_base)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.base_path = parts.path.rstrip("/")
        self._client = Client(app)
        self._token: tuple[str, float] | None = None

    @property
    def auth(self) -> Any:
        """The hub's AuthServices (clients, users, tokens)."""
        return self.app.extensions["telehub.auth"].services

    def ensure_sandbox_client(self) -> None:
        """Register the sandbox EHR's own client once (a public client without grants: tokens are minted here)."""
        if self.auth.clients.get(SANDBOX_CLIENT) is None:
            self.auth.clients.add(SANDBOX_CLIENT, client_type="public", name="Telehub sandbox EHR",
                                  scope=SANDBOX_SCOPE, grant_types=[])

    def system_token(self) -> str:
        """A short-lived system token with ``launch`` for the sandbox EHR, minted with the hub's keys."""
        now = time.time()
        if self._token is None or self._token[1] - 30 < now:
            self.ensure_sandbox_client()
            body = self.auth.tokens.issue(client_id=SANDBOX_CLIENT, user=None, scope=SANDBOX_SCOPE,
                                          lifetime=TOKEN_LIFETIME)
            self._token = (body["access_token"], now + TOKEN_LIFETIME)
        return self._token[0]

    def call(self, method: str, path: str, *, query: str = "", headers: dict[str, str] | None = None,
             data: bytes | dict[str, str] | None = None, remote_addr: str = "127.0.0.1") -> HubReply:
        """One request to the hub; ``path`` is relative to the FHIR base (``Patient``, ``auth/token``)."""
        url = f"{self.base_path}/{path.lstrip('/')}" if path else self.base_path
        resp: TestResponse = self._client.open(
            url, method=method, query_string=query or None, headers=headers or {}, data=data,
            base_url=self.origin, environ_base={"REMOTE_ADDR": remote_addr})
        try:
            return HubReply(resp.status_code, dict(resp.headers), resp.get_data())
        finally:
            resp.close()

    def read_json(self, path: str, query: str = "") -> Any:
        """GET with the sandbox's system token; raises :class:`HubError` unless 200."""
        reply = self.call("GET", path, query=query, headers={
            "Authorization": f"Bearer {self.system_token()}", "Accept": "application/fhir+json"})
        if reply.status != 200:
            raise HubError(f"GET {path} answered {reply.status}")
        return reply.json()

    def create_launch(self, context: dict[str, Any]) -> str:
        """POST {base}/auth/launch with the system token: an opaque, single-use launch id."""
        reply = self.call("POST", "auth/launch", data=orjson.dumps(context), headers={
            "Authorization": f"Bearer {self.system_token()}", "Content-Type": "application/json"})
        if reply.status != 201:
            raise HubError(f"POST auth/launch answered {reply.status}: {reply.body[:200]!r}")
        launch: str = reply.json()["launch"]
        return launch
