"""The authorization server: Authlib's registry of grants, client-auth methods and endpoints.

Discovery (:mod:`.discovery`) is generated from what is registered here.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Request
from authlib.oauth2.rfc6749 import InvalidClientError, OAuth2Payload, OAuth2Request
from flask import request as flask_request
from sqlalchemy import Engine

from fhir_gateway.auth.client_auth import PrivateKeyJwt
from fhir_gateway.auth.clients import ClientStore
from fhir_gateway.auth.endpoints import Introspection, Revocation
from fhir_gateway.auth.grants import AuthorizationCode, ClientCredentials, RefreshToken
from fhir_gateway.auth.keys import SigningKeys
from fhir_gateway.auth.pkce import S256CodeChallenge
from fhir_gateway.auth.store import EphemeralStore
from fhir_gateway.auth.tokens import TokenService
from fhir_gateway.auth.users import MfaVerifier, UserStore


@dataclass
class AuthServices:
    """Everything the grants and views need, built once by ``init_app``."""

    engine: Engine
    issuer: str
    clients: ClientStore
    users: UserStore
    keys: SigningKeys
    tokens: TokenService
    store: EphemeralStore
    mfa: MfaVerifier

    def endpoint(self, name: str) -> str:
        return f"{self.issuer}/auth/{name}"


class StoredPayload(OAuth2Payload):  # type: ignore[misc]
    """An authorization request saved server-side between the login/consent pages."""

    def __init__(self, data: dict[str, str]) -> None:
        self._data = data

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for k, v in self._data.items():
            out[k].append(v)
        return out


def stored_request(uri: str, data: dict[str, str]) -> OAuth2Request:
    req = OAuth2Request("GET", uri, headers={})
    req.payload = StoredPayload(data)
    return req


class SmartAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, services: AuthServices) -> None:
        super().__init__(query_client=services.clients.query, save_token=lambda token, request: None)
        self.services = services
        self.load_config({})

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return FlaskOAuth2Request(flask_request)

    def authenticate_client(self, request: Any, methods: list[str], endpoint: str = "token") -> Any:
        """RFC 6749 §5.2: 401 with ``WWW-Authenticate`` only when the client tried the Authorization header."""
        try:
            return super().authenticate_client(request, methods, endpoint)
        except InvalidClientError as error:
            error.status_code = 401 if request.headers.get("Authorization") else 400
            raise

    @property
    def auth_methods(self) -> list[str]:
        return [m for m in self._client_auth._methods if m != "none"] if self._client_auth else []

    @property
    def grant_types(self) -> list[str]:
        return [cls.GRANT_TYPE for cls, _ in self._token_grants]


def build_server(services: AuthServices) -> SmartAuthorizationServer:
    server = SmartAuthorizationServer(services)
    server.register_grant(AuthorizationCode, [S256CodeChallenge()])
    server.register_grant(RefreshToken)
    server.register_grant(ClientCredentials)
    server.register_client_auth_method(
        "private_key_jwt", PrivateKeyJwt(services.endpoint("token"), services.clients, services.store))
    server.register_endpoint(Introspection)
    server.register_endpoint(Revocation)
    return server
