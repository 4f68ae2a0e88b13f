"""The authorization-code steps of an EHR or standalone launch: authorize URL, code exchange, refresh,
id_token verification (SMART App Launch 2.2 §§ "Obtain authorization code" to "Refresh access token").
"""
from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from smart_app.smart.discovery import ServerConfig
from smart_app.smart.errors import EhrUnavailable, TokenExchangeFailed
from smart_app.transport import Transport, TransportError

JSON = {"Accept": "application/json"}


def authorize_url(config: ServerConfig, *, client_id: str, redirect_uri: str, scope: str, state: str,
                  challenge: str, aud: str, launch: str | None) -> str:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": scope,
              "state": state, "aud": aud, "code_challenge": challenge, "code_challenge_method": "S256"}
    if launch:
        params["launch"] = launch
    sep = "&" if "?" in config.authorization_endpoint else "?"
    return f"{config.authorization_endpoint}{sep}{urlencode(params)}"


def _token_request(transport: Transport, token_url: str, form: dict[str, str],
                   basic: tuple[str, str]) -> dict[str, Any]:
    try:
        reply = transport.request("POST", token_url, form=form, basic=basic, headers=JSON)
    except TransportError as exc:
        raise EhrUnavailable(str(exc)) from None
    if reply.status >= 500:
        raise EhrUnavailable(f"the EHR's token endpoint answered {reply.status}")
    try:
        body: dict[str, Any] = reply.json()
    except ValueError:
        raise TokenExchangeFailed(f"the token endpoint answered {reply.status} without JSON") from None
    if reply.status != 200 or not body.get("access_token"):
        raise TokenExchangeFailed(f"the token endpoint answered {reply.status} ({body.get('error', 'no token')})")
    return body


def exchange_code(transport: Transport, token_url: str, *, code: str, verifier: str, redirect_uri: str,
                  client: tuple[str, str]) -> dict[str, Any]:
    return _token_request(transport, token_url, {"grant_type": "authorization_code", "code": code,
                                                 "redirect_uri": redirect_uri, "code_verifier": verifier}, client)


def refresh(transport: Transport, token_url: str, *, refresh_token: str, client: tuple[str, str]) -> dict[str, Any]:
    return _token_request(transport, token_url, {"grant_type": "refresh_token", "refresh_token": refresh_token},
                          client)


def id_token_claims(transport: Transport, config: ServerConfig, id_token: str, client_id: str) -> dict[str, Any]:
    """Verify signature (the server's JWKS), ``iss``, ``aud`` and ``exp``; return the claims."""
    from joserfc import jwt
    from joserfc.errors import JoseError
    from joserfc.jwk import KeySet

    try:
        reply = transport.request("GET", config.jwks_uri, headers=JSON)
    except TransportError as exc:
        raise EhrUnavailable(str(exc)) from None
    if reply.status != 200:
        raise EhrUnavailable(f"the EHR's key set answered {reply.status}")
    try:
        token = jwt.decode(id_token, KeySet.import_key_set(reply.json()), algorithms=["RS256", "RS384", "ES256",
                                                                                      "ES384"])
    except (JoseError, ValueError) as exc:
        raise TokenExchangeFailed("the id_token signature does not verify") from exc
    claims: dict[str, Any] = dict(token.claims)
    aud = claims.get("aud")
    if (config.issuer and claims.get("iss") != config.issuer) or aud not in (client_id, [client_id]) \
            or not isinstance(claims.get("exp"), int) or claims["exp"] < time.time() - 30:
        raise TokenExchangeFailed("the id_token is not for this app, not from this EHR, or expired")
    return claims
