"""Replaying recorded vendor responses (sandbox_fixtures/recordings) with ``responses``.

:class:`Replay` routes by method, URL and query (order-insensitive) to a queue of answers; the last
answer of a queue repeats. Anything a test adds on top of a recording (an extra page, a 429, a 401,
a truncated body) is built in the test and says so.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fhir_gateway.upstream.audit import MemoryAuditor
from fhir_gateway.upstream.client import UpstreamClient
from fhir_gateway.upstream.connection import Connection, connection_from_dict
from fhir_gateway.upstream.factory import build_client
from sandbox_fixtures.recordings import body, path
from vendor_profiles import ProfileRegistry

EPIC_BASE = "https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4"
EPIC_TOKEN = "https://fhir.epic.com/interconnect-fhir-oauth/oauth2/token"
CERNER_TENANT = "ec2458f2-1e24-41c8-b71b-0e701af7583d"
CERNER_BASE = f"https://fhir-open.cerner.com/r4/{CERNER_TENANT}"
CERNER_TOKEN = (f"https://authorization.cerner.com/tenants/{CERNER_TENANT}/protocols/oauth2/profiles/smart-v1/token")
ATHENA_BASE = "https://api.preview.platform.athenahealth.com/fhir/r4"
ATHENA_TOKEN = "https://api.preview.platform.athenahealth.com/oauth2/v1/token"
GENERIC_BASE = "https://hapi.example.org/fhir"
GENERIC_TOKEN = "https://hapi.example.org/oauth/token"


def _key(method: str, url: str, params: dict[str, str] | None = None) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list((params or {}).items())
    return method.upper(), f"{parts.scheme}://{parts.netloc}{parts.path}", tuple(sorted(query))


@dataclass
class Replay:
    rsps: responses.RequestsMock
    routes: dict[Any, list[Any]] = field(default_factory=dict)
    seen: list[requests.PreparedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        import re

        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            self.rsps.add_callback(method, re.compile(r"https?://.*"), callback=self._dispatch)

    def on(self, method: str, url: str, *, params: dict[str, str] | None = None, status: int = 200,
           json_body: Any = None, raw: bytes | None = None, headers: dict[str, str] | None = None) -> None:
        content = raw if raw is not None else (b"" if json_body is None else json.dumps(json_body).encode())
        hdrs = {"Content-Type": "application/fhir+json"} if json_body is not None else {}
        hdrs.update(headers or {})
        self.routes.setdefault(_key(method, url, params), []).append((status, hdrs, content))

    def fail(self, method: str, url: str, exc: Exception, *, params: dict[str, str] | None = None) -> None:
        """The call raises ``exc`` (connection refused, timeout) instead of answering."""
        self.routes.setdefault(_key(method, url, params), []).append(exc)

    def _dispatch(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        self.seen.append(request)
        key = _key(str(request.method), str(request.url))
        queue = self.routes.get(key)
        if not queue:
            raise AssertionError(f"no recorded answer for {key}")
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[no-any-return]

    def count(self, method: str, url_prefix: str) -> int:
        return sum(1 for r in self.seen if r.method == method and str(r.url).startswith(url_prefix))


@pytest.fixture
def replay() -> Iterator[Replay]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield Replay(rsps)


class FakeClock:
    """Time that moves only when the code sleeps (or a test says so)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def profiles() -> ProfileRegistry:
    return ProfileRegistry.load()


@pytest.fixture(scope="session")
def rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture
def secrets(tmp_path: Path, rsa_pem: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    key = tmp_path / "backend.pem"
    key.write_text(rsa_pem)
    monkeypatch.setenv("TEST_UPSTREAM_SECRET", "s3cret-value")
    return {"private_key": f"file:{key}", "client_secret": "env:TEST_UPSTREAM_SECRET"}


def make_connection(vendor: str, profiles: ProfileRegistry, secrets: dict[str, str], **extra: Any) -> Connection:
    data: dict[str, Any] = {
        "epic": {"tenant": "clinic-epic", "vendor": "epic", "base_url": EPIC_BASE, "client_id": "epic-client-1",
                 "private_key": secrets["private_key"], "key_id": "k1",
                 "jku": "https://hub.example/.well-known/jwks.json"},
        "cerner": {"tenant": CERNER_TENANT, "vendor": "cerner", "base_url": CERNER_BASE,
                   "client_id": "cerner-system-account", "client_secret": secrets["client_secret"]},
        "athena": {"tenant": "clinic-athena", "vendor": "athena", "base_url": ATHENA_BASE, "practice": "195900",
                   "client_id": "athena-client", "client_secret": secrets["client_secret"],
                   "token_url": ATHENA_TOKEN},
        "generic-r4": {"tenant": "hapi", "vendor": "generic-r4", "base_url": GENERIC_BASE, "client_id": "hub",
                       "private_key": secrets["private_key"], "token_url": GENERIC_TOKEN},
    }[vendor]
    data.update(extra)
    return connection_from_dict(data, profiles)


TOKEN_URLS = {"epic": EPIC_TOKEN, "cerner": CERNER_TOKEN, "athena": ATHENA_TOKEN, "generic-r4": GENERIC_TOKEN}
BASES = {"epic": EPIC_BASE, "cerner": CERNER_BASE, "athena": ATHENA_BASE, "generic-r4": GENERIC_BASE}


def token_reply(vendor: str, token: str = "tok-1", expires_in: int | None = None) -> dict[str, Any]:
    """A token response in the vendor's shape: Cerner's from its docs example, the others built here."""
    if vendor == "cerner":
        reply = dict(body("cerner", "token-response_authorization-code.json")["body"])
        reply["access_token"] = token
        return reply
    return {"access_token": token, "token_type": "Bearer", "expires_in": expires_in or 3600,
            "scope": "system/Patient.r system/Observation.rs"}


@dataclass
class Harness:
    client: UpstreamClient
    replay: Replay
    clock: FakeClock
    auditor: MemoryAuditor
    base: str
    vendor: str

    def smart_config(self) -> None:
        name = {"epic": "smart-configuration_sandbox-r4.json",
                "cerner": "smart-configuration_sandbox-provider-system_fhir-ehr-code.json",
                "athena": "smart-configuration_production.json"}.get(self.vendor)
        if name:
            self.replay.on("GET", f"{self.base}/.well-known/smart-configuration", json_body=body(self.vendor, name))

    def token(self, *tokens: str) -> None:
        for t in tokens or ("tok-1",):
            self.replay.on("POST", TOKEN_URLS[self.vendor], json_body=token_reply(self.vendor, t))


@pytest.fixture
def harness(replay: Replay, clock: FakeClock, profiles: ProfileRegistry, secrets: dict[str, str]) -> Any:
    def make(vendor: str, *, redis_client: Any = None, prefix: str = "t:", **extra: Any) -> Harness:
        auditor = MemoryAuditor()
        conn = make_connection(vendor, profiles, secrets, **extra)
        client = build_client(conn, auditor=auditor, clock=clock, sleep=clock.sleep, rng=lambda: 0.5,
                              redis_client=redis_client, prefix=prefix)
        h = Harness(client, replay, clock, auditor, BASES[vendor], vendor)
        h.smart_config()
        return h
    return make


def recording_bytes(vendor: str, name: str) -> bytes:
    return path(vendor, name).read_bytes()
