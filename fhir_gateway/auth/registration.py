"""Dynamic client registration (RFC 7591), gated by an initial access token, with RFC 7592 read and delete.

``POST {fhir base}/auth/register`` with ``Authorization: Bearer <initial access token>`` (issued by
``telehub clients initial-token``) and a JSON body of client metadata answers 201 with the client's
credentials and the metadata as registered, plus a ``registration_access_token`` with which the client
may ``GET`` or ``DELETE`` ``registration_client_uri``. Updating a registration (RFC 7592 PUT) is not offered:
delete and register again.
"""
from __future__ import annotations

import secrets
import time
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, request

from fhir_gateway.auth.clients import SYMMETRIC, Client, ClientError, generate_secret
from fhir_gateway.auth.registration_metadata import (
    INVALID_METADATA,
    ClientMetadata,
    RegistrationError,
    validate_metadata,
)
from fhir_gateway.auth.registration_store import InitialToken, Registration, RegistrationStore, new_token
from fhir_gateway.auth.server import AuthServices, SmartAuthorizationServer
from fhir_gateway.auth.views import EXT

BLUEPRINT = "telehub_registration"
MAX_BODY = 64 * 1024
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
REALM = 'Bearer realm="telehub"'


def _services() -> AuthServices:
    server: SmartAuthorizationServer = current_app.extensions[EXT]
    return server.services


def _json(body: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status=status, content_type="application/json",
                    headers={**NO_STORE, **(headers or {})})


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def _unauthorized(presented: bool) -> Response:
    """RFC 6750 §3: no error code in the challenge when no token was sent at all."""
    challenge = REALM + (', error="invalid_token"' if presented else "")
    return _json({"error": "invalid_token"}, 401, {"WWW-Authenticate": challenge})


def _refused(error: str, description: str, status: int = 400) -> Response:
    return _json({"error": error, "error_description": description}, status)


def _read_body() -> dict[str, Any] | Response:
    """The JSON object of the request, or the error response (413 when over :data:`MAX_BODY`)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return _refused("invalid_request", f"the registration request is larger than {MAX_BODY} bytes", 413)
    raw = request.stream.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        return _refused("invalid_request", f"the registration request is larger than {MAX_BODY} bytes", 413)
    if request.mimetype != "application/json":
        return _refused(INVALID_METADATA, "the client metadata must be sent as application/json")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _refused(INVALID_METADATA, "the request body is not valid JSON")
    if not isinstance(body, dict):
        return _refused(INVALID_METADATA, "the client metadata must be a JSON object")
    return body


def describe(s: AuthServices, client: Client, reg: Registration) -> dict[str, Any]:
    """The client information response (RFC 7591 §3.2.1) without the one-time secrets."""
    out: dict[str, Any] = {
        "client_id": client.client_id, "client_id_issued_at": reg.created,
        "registration_client_uri": f"{s.endpoint('register')}/{client.client_id}",
        "token_endpoint_auth_method": reg.auth_method, "grant_types": client.grant_types,
        "response_types": reg.metadata.get("response_types", []), "redirect_uris": client.redirect_uris,
        "scope": client.scope, **reg.metadata.get("extra", {})}
    if client.jwks is not None:
        out["jwks"] = client.jwks
    if client.jwks_uri:
        out["jwks_uri"] = client.jwks_uri
    if client.client_type == SYMMETRIC:
        out["client_secret_expires_at"] = 0
    return out


def register() -> Response:
    s = _services()
    store = RegistrationStore(s.engine)
    token = _bearer()
    initial = store.find_initial(token) if token else None
    if initial is None:
        return _unauthorized(token is not None)
    body = _read_body()
    if isinstance(body, Response):
        return body
    try:
        meta = validate_metadata(body, initial.scope_ceiling)
    except RegistrationError as exc:
        return _refused(exc.error, exc.description)
    if not store.consume(initial):
        return _unauthorized(True)
    return _create(s, store, initial, meta)


def _create(s: AuthServices, store: RegistrationStore, initial: InitialToken, meta: ClientMetadata) -> Response:
    client_id = secrets.token_urlsafe(18)
    secret = generate_secret() if meta.client_type == SYMMETRIC else None
    try:
        client = s.clients.add(client_id, client_type=meta.client_type, redirect_uris=meta.redirect_uris,
                               scope=meta.scope, secret=secret, jwks=meta.jwks, jwks_uri=meta.jwks_uri,
                               name=meta.extra.get("client_name"), grant_types=meta.grant_types)
    except ClientError as exc:
        store.refund(initial)
        return _refused(INVALID_METADATA, str(exc))
    access_token = new_token()
    reg = Registration(client_id, meta.auth_method, {"response_types": meta.response_types, "extra": meta.extra},
                       int(time.time()))
    store.save(client_id, access_token=access_token, initial=initial, auth_method=reg.auth_method,
               metadata=reg.metadata, created=reg.created)
    out = describe(s, client, reg)
    out["registration_access_token"] = access_token
    if secret is not None:
        out["client_secret"] = secret
    return _json(out, 201, {"Location": out["registration_client_uri"]})


def manage(client_id: str) -> Response:
    """RFC 7592 read (GET) and delete (DELETE), authorized by the registration access token."""
    s = _services()
    store = RegistrationStore(s.engine)
    token = _bearer()
    reg = store.authenticate(client_id, token) if token else None
    client = s.clients.get(client_id) if reg else None
    if reg is None or client is None:
        return _unauthorized(token is not None)
    if request.method == "DELETE":
        s.clients.remove(client_id)
        store.delete(client_id)
        return Response(status=204, headers=NO_STORE)
    return _json(describe(s, client, reg), 200)


def make_registration_blueprint() -> Blueprint:
    """Mounted by :func:`fhir_gateway.auth.init_app` under the FHIR base path, beside the auth blueprint."""
    bp = Blueprint(BLUEPRINT, __name__)
    bp.add_url_rule("/auth/register", "register", register, methods=["POST"])
    bp.add_url_rule("/auth/register/<client_id>", "manage", manage, methods=["GET", "DELETE"])
    return bp
