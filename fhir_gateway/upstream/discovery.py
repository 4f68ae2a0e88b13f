"""SMART configuration and CapabilityStatement of a connection's FHIR server (public documents).

Always ``{base}/.well-known/smart-configuration`` (SMART App Launch 2 §2.1): Cerner serves it per
tenant only, athena has nothing at the host root (vendor-notes §5.1).
"""
from __future__ import annotations

from typing import Any

import requests

from fhir_gateway.upstream.connection import Connection
from fhir_gateway.upstream.decode import parse_json
from fhir_gateway.upstream.errors import UpstreamBadResponse, UpstreamHttpError, UpstreamUnavailable

JSON = dict[str, Any]


def _fetch(session: requests.Session, url: str, accept: str, what: str, timeout: float) -> JSON:
    try:
        response = session.get(url, headers={"Accept": accept}, timeout=timeout)
    except requests.RequestException as exc:
        raise UpstreamUnavailable(f"{what}: no answer ({type(exc).__name__})") from None
    body = parse_json(response, what)
    if response.status_code != 200:
        raise UpstreamHttpError(f"{what}: HTTP {response.status_code}", status=response.status_code)
    if not isinstance(body, dict):
        raise UpstreamBadResponse(f"{what}: not a JSON object", status=response.status_code)
    return body


def smart_configuration(session: requests.Session, connection: Connection, timeout: float = 10.0) -> JSON:
    path = connection.profile.discovery.smart_configuration
    body = _fetch(session, connection.url(path), "application/json", "smart-configuration", timeout)
    if not isinstance(body.get("token_endpoint"), str):
        raise UpstreamBadResponse("smart-configuration has no token_endpoint")
    return body


def capability_statement(session: requests.Session, connection: Connection, timeout: float = 30.0) -> JSON:
    path = connection.profile.discovery.capability_statement
    body = _fetch(session, connection.url(path), connection.profile.content.accept, "CapabilityStatement", timeout)
    if body.get("resourceType") != "CapabilityStatement":
        raise UpstreamBadResponse("metadata is not a CapabilityStatement")
    return body


def token_endpoint(session: requests.Session, connection: Connection) -> str:
    return str(smart_configuration(session, connection)["token_endpoint"])
