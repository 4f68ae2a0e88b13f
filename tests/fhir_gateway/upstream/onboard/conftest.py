"""Fixtures for onboarding runs against the sandbox (in-process, no sockets) and offline replays.

The sandbox hub is the vendor: its flavoured bases play Epic, Cerner and athena, its own ``/fhir``
plays an unknown plain R4 server. Backend services (private_key_jwt) go to the hub's token endpoint
(the sandbox's documented limit); Cerner and athena use client secrets, which the hub's server does
not accept for client_credentials, so a small vendor-style token endpoint (``VendorTokenAdapter``)
answers them with a token the hub issued, granting what the test says.
"""
from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from tests.fhir_gateway.upstream.test_sync_sandbox import WsgiAdapter
from tests.sandbox_fixtures.conftest import ORIGIN, Sandbox, build

BACKEND_CLIENT = "onboard-backend"
TOKEN_HOST = "https://vendor-auth.test"
HUB_TOKEN = f"{ORIGIN}/fhir/auth/token"
FLAVOUR = {"epic": "epic", "cerner": "cerner", "athena": "athena", "generic-r4": "generic"}


class VendorTokenAdapter(BaseAdapter):
    """A client_secret_basic token endpoint in the vendor's style: grants ``grant(requested)`` scopes."""

    def __init__(self, token: str, grant: Callable[[list[str]], list[str]], expires_in: int = 570) -> None:
        super().__init__()
        self.token, self.grant, self.expires_in = token, grant, expires_in
        self.requests: list[dict[str, str]] = []

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None, verify: Any = True,
             cert: Any = None, proxies: Any = None) -> requests.Response:
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
        form = dict(parse_qsl(body))
        self.requests.append({**form, "authorization": str(request.headers.get("Authorization", ""))})
        response = requests.Response()
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json"})
        if not str(request.headers.get("Authorization", "")).startswith("Basic "):
            response.status_code = 401
            response._content = b'{"error":"invalid_client"}'
        else:
            response.status_code = 200
            granted = self.grant(form.get("scope", "").split())
            response._content = json.dumps({"access_token": self.token, "token_type": "Bearer",
                                            "expires_in": self.expires_in, "scope": " ".join(granted)}).encode()
        response.url, response.request = str(request.url), request
        return response

    def close(self) -> None:
        return None


@dataclass
class Keys:
    pem_file: Path
    jwks: dict[str, Any]


@pytest.fixture(scope="session")
def backend_keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path = tmp_path_factory.mktemp("keys") / "backend.pem"
    path.write_bytes(pem)
    public = RSAKey.import_key(pem.decode()).as_dict(private=False)
    public.update(kid="onboard-1", alg="RS384", use="sig")
    return Keys(path, {"keys": [public]})


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory, backend_keys: Keys) -> Iterator[Sandbox]:
    sb = build(tmp_path_factory.mktemp("sandbox-onboard"))
    auth = sb.app.hub_app.extensions["telehub.auth"].services
    auth.clients.add(BACKEND_CLIENT, client_type="asymmetric", jwks=backend_keys.jwks,
                     scope="system/*.rs", name="onboarding under test")
    yield sb
    sb.app.hub_app.extensions["telehub.fhir"].repository.engine.dispose()


def session_for(sandbox: Sandbox, vendor_tokens: VendorTokenAdapter | None = None) -> requests.Session:
    session = requests.Session()
    session.mount(ORIGIN, WsgiAdapter(sandbox.app))
    if vendor_tokens is not None:
        session.mount(TOKEN_HOST, vendor_tokens)
    return session


def base_of(sandbox: Sandbox, vendor: str) -> str:
    return ORIGIN + sandbox.base(FLAVOUR[vendor])


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
