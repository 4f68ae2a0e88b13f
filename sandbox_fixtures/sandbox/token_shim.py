"""The flavoured authorization surface: discovery, authorize and token, backed by the hub's SMART server.

A flavoured base is its own ``iss``, so the app discovers it there; its authorize and token endpoints
are thin shims over the hub: authorize swaps ``aud`` for the hub's base and sends the browser to the
hub's own login and consent pages; token relays the request in-process and adds the flavour's
token-response extras (vendor-notes §2.2 Epic: ``need_patient_banner`` as the string "true",
``__epic.dstu2.patient``, ``deptID``, ``loginDepartment``; §3.2 Cerner ``expires_in`` 570; §4.1 athena
practice). Everything else stays the hub's (issuer, JWKS, introspection), so id_tokens still verify.

Known limit: a private_key_jwt assertion must name the hub's token URL as ``aud`` (the hub checks it),
so backend services use the hub's token endpoint directly.
"""
from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import urlencode

import orjson

from sandbox_fixtures.sandbox.fhir_proxy import FlavouredFhir
from sandbox_fixtures.sandbox.flavours import Flavour
from sandbox_fixtures.sandbox.vendor_errors import Reply

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache", "Access-Control-Allow-Origin": "*"}


def smart_configuration(fhir: FlavouredFhir, flavour: Flavour) -> Reply:
    """The hub's smart-configuration with authorize and token pointing at this flavour's shims."""
    reply = fhir.hub.call("GET", ".well-known/smart-configuration", headers={"Accept": "application/json"})
    config: dict[str, Any] = reply.json()
    base = fhir.public_base(flavour)
    config["authorization_endpoint"] = f"{base}/auth/authorize"
    config["token_endpoint"] = f"{base}/auth/token"
    return Reply(200, orjson.dumps(config), "application/json", {"Access-Control-Allow-Origin": "*"})


def authorize_redirect(fhir: FlavouredFhir, flavour: Flavour, params: list[tuple[str, str]]) -> str:
    """Where the browser goes: the hub's authorize with ``aud`` = the hub when the app asked for this base."""
    base = fhir.public_base(flavour)
    out = [(k, fhir.hub.fhir_base if k == "aud" and v.rstrip("/") == base else v) for k, v in params]
    return f"{fhir.hub.fhir_base}/auth/authorize?{urlencode(out)}"


def dstu2_alias(patient: str) -> str:
    """A stable stand-in for Epic's per-version patient id (§2.6: the DSTU2 id differs from the R4 id)."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(f"dstu2:{patient}".encode()).digest()).decode()
    return "T" + digest[:40].replace("_", ".")


def flavour_token_body(flavour: Flavour, body: dict[str, Any]) -> dict[str, Any]:
    """Add the flavour's extras to a successful token response (pure)."""
    out = dict(body)
    launch = flavour.launch
    if "patient" in out:  # a launch (user) token
        if launch.get("need_patient_banner") == "string" and "need_patient_banner" in out:
            out["need_patient_banner"] = "true" if out["need_patient_banner"] in (True, "true") else "false"
        out.update(launch.get("extras", {}))
        if launch.get("dstu2_patient"):
            out["__epic.dstu2.patient"] = dstu2_alias(str(out["patient"]))
    cap = int(flavour.token.get("expires_in_cap", 0) or 0)
    if cap and isinstance(out.get("expires_in"), int):
        out["expires_in"] = min(out["expires_in"], cap)  # never longer than the token really lives
    if flavour.token.get("ah_practice") and flavour.practice:
        out["ah_practice"] = f"a-1.Practice-{flavour.practice}"
    return out


def token(fhir: FlavouredFhir, flavour: Flavour, form: dict[str, str], authorization: str | None,
          remote_addr: str) -> Reply:
    """Relay a token request to the hub in-process; add the flavour's extras to a 200."""
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    hub = fhir.hub.call("POST", "auth/token", data=urlencode(form).encode(), headers=headers,
                        remote_addr=remote_addr)
    extra = {k: v for k, v in hub.headers.items() if k in ("Retry-After", "WWW-Authenticate")}
    if hub.status != 200:
        return Reply(hub.status, hub.body, hub.headers.get("Content-Type", "application/json"), {**NO_STORE, **extra})
    return Reply(200, orjson.dumps(flavour_token_body(flavour, hub.json())), "application/json", NO_STORE)
