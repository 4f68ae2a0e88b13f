"""SMART configuration (``.well-known/smart-configuration``) and OpenID Connect discovery, generated
from the registered grants, client-auth methods and endpoints — never hand-written.

https://hl7.org/fhir/smart-app-launch/conformance.html
"""
from __future__ import annotations

from typing import Any

from fhir_gateway.auth.client_auth import ASSERTION_ALGS
from fhir_gateway.auth.server import SmartAuthorizationServer

# capability → what must be registered for it to be advertised
_BY_GRANT = {"authorization_code": ["launch-ehr", "launch-standalone", "authorize-post", "client-public",
                                    "context-banner", "context-style", "context-ehr-patient",
                                    "context-ehr-encounter", "context-standalone-patient", "permission-online",
                                    "permission-patient", "permission-user", "permission-v1", "permission-v2",
                                    "sso-openid-connect"],
             "refresh_token": ["permission-offline"]}
_BY_AUTH = {"client_secret_basic": ["client-confidential-symmetric"],
            "private_key_jwt": ["client-confidential-asymmetric"]}
SCOPES = ["openid", "fhirUser", "launch", "launch/patient", "launch/encounter", "offline_access", "online_access",
          "patient/*.rs", "user/*.rs", "user/*.cruds", "system/*.rs", "patient/*.read", "user/*.read",
          "system/*.read"]


def capabilities(server: SmartAuthorizationServer) -> list[str]:
    caps: list[str] = []
    for grant in server.grant_types:
        caps += _BY_GRANT.get(grant, [])
    for method in server.auth_methods:
        caps += _BY_AUTH.get(method, [])
    return sorted(set(caps))


def smart_configuration(server: SmartAuthorizationServer) -> dict[str, Any]:
    s = server.services
    return {
        "issuer": s.issuer,
        "jwks_uri": s.endpoint("jwks"),
        "authorization_endpoint": s.endpoint("authorize"),
        "token_endpoint": s.endpoint("token"),
        "introspection_endpoint": s.endpoint("introspect"),
        "revocation_endpoint": s.endpoint("revoke"),
        "registration_endpoint": s.endpoint("register"),  # RFC 7591, needs an initial access token
        "token_endpoint_auth_methods_supported": server.auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "grant_types_supported": server.grant_types,
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": capabilities(server),
    }


def openid_configuration(server: SmartAuthorizationServer) -> dict[str, Any]:
    s = server.services
    return {
        "issuer": s.issuer,
        "authorization_endpoint": s.endpoint("authorize"),
        "token_endpoint": s.endpoint("token"),
        "jwks_uri": s.endpoint("jwks"),
        "registration_endpoint": s.endpoint("register"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "fhirUser", "profile"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "fhirUser"],
        "token_endpoint_auth_methods_supported": server.auth_methods,
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": server.grant_types,
    }
