"""Fixtures for the sandbox EHR: the hub with the demo data, mounted with the sandbox, driven in-process.

``sandbox`` builds one hub per test module (TELEHUB_AUTH=smart, fresh SQLite, the demo Synthea
patients) with a controllable clock for paging sessions; ``adapter_token`` is what a vendor adapter
would hold (a system token from the hub's own authorization server).
"""
from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from werkzeug.test import Client, TestResponse

from fhir_gateway.app import create_app
from fhir_gateway.demo import seed_demo_data
from fhir_gateway.settings import Settings
from sandbox_fixtures.sandbox.flavours import Flavour, load_flavours
from sandbox_fixtures.sandbox.paging import PageSessions
from sandbox_fixtures.sandbox.wsgi import Mounted, mount

ORIGIN = "http://127.0.0.1:8080"
ADAPTER = "sandbox-test-adapter"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Sandbox:
    app: Mounted
    settings: Settings
    clock: FakeClock
    token: str
    flavours: dict[str, Flavour]
    patients: dict[str, str] = field(default_factory=dict)  # family name -> id

    @property
    def client(self) -> Client:
        return Client(self.app)

    def base(self, flavour: str) -> str:
        """The flavoured base path (no origin)."""
        return "/sandbox" + self.flavours[flavour].base_path

    def get(self, url: str, *, accept: str | None = "application/fhir+json", token: str | None = None,
            **headers: str) -> TestResponse:
        if url.startswith(ORIGIN):
            url = url[len(ORIGIN):]
        hdrs = {"Authorization": f"Bearer {token or self.token}", **headers}
        if accept is not None:
            hdrs["Accept"] = accept
        return self.client.get(url, headers=hdrs, base_url=ORIGIN)


def json_of(resp: TestResponse) -> Any:
    return orjson.loads(resp.get_data())


def make_settings(tmp: Path) -> Settings:
    kek = tmp / "kek.key"
    kek.write_text(base64.b64encode(os.urandom(32)).decode())
    kek.chmod(0o600)
    return Settings(env="test", database_url=f"sqlite:///{tmp / 'telehub.sqlite3'}", base_url=f"{ORIGIN}/fhir",
                    auth="smart", kek_file=str(kek))


def build(tmp: Path, overrides: dict[str, dict[str, Any]] | None = None) -> Sandbox:
    settings = make_settings(tmp)
    seed_demo_data(settings)
    hub = create_app(settings)
    clock = FakeClock()
    flavours = load_flavours(overrides=overrides)
    mounted = mount(hub, flavours=flavours, sessions=PageSessions(clock=clock))
    auth = hub.extensions["telehub.auth"].services
    auth.clients.add(ADAPTER, client_type="public", redirect_uris=["http://127.0.0.1/unused"],
                     scope="system/*.rs", name="adapter under test")
    token = auth.tokens.issue(client_id=ADAPTER, user=None, scope="system/*.rs", lifetime=3600)["access_token"]
    sandbox = Sandbox(mounted, settings, clock, token, flavours)
    bundle = json_of(sandbox.get("/fhir/Patient?_count=50"))
    for entry in bundle["entry"]:
        sandbox.patients[entry["resource"]["name"][0]["family"]] = entry["resource"]["id"]
    return sandbox


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sb = build(tmp_path_factory.mktemp("sandbox"))
    yield sb
    sb.app.hub_app.extensions["telehub.fhir"].repository.engine.dispose()
