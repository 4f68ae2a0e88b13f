"""SMART discovery: ``{iss}/.well-known/smart-configuration`` (App Launch 2.2 §"Discovery").

https://hl7.org/fhir/smart-app-launch/conformance.html#using-well-known
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smart_app.smart.errors import EhrUnavailable
from smart_app.transport import Transport, TransportError


@dataclass(frozen=True)
class ServerConfig:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    capabilities: tuple[str, ...]

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ServerConfig:
        return cls(issuer=str(body.get("issuer", "")), authorization_endpoint=str(body["authorization_endpoint"]),
                   token_endpoint=str(body["token_endpoint"]), jwks_uri=str(body.get("jwks_uri", "")),
                   capabilities=tuple(body.get("capabilities", [])))


def discover(transport: Transport, iss: str) -> ServerConfig:
    """Fetch and check the configuration; any failure is :class:`EhrUnavailable` (the user can only retry)."""
    url = f"{iss.rstrip('/')}/.well-known/smart-configuration"
    try:
        reply = transport.request("GET", url, headers={"Accept": "application/json"})
    except TransportError as exc:
        raise EhrUnavailable(str(exc)) from None
    if reply.status != 200:
        raise EhrUnavailable(f"the EHR's SMART configuration answered {reply.status}")
    try:
        body = reply.json()
        config = ServerConfig.from_json(body)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise EhrUnavailable("the EHR's SMART configuration is not valid JSON with the required endpoints") from None
    if "S256" not in body.get("code_challenge_methods_supported", []):
        raise EhrUnavailable("the EHR does not support PKCE S256, which Telehub requires")
    return config
