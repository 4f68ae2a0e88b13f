"""The launch context from a token response (SMART App Launch 2.2 "Launch context arrives with your
access_token"), normalised across vendors.

Vendor notes §2.2/§5.10: Epic sends ``need_patient_banner`` as the string "true"; others as a boolean.
Unknown vendor keys (Epic ``deptID``, ``loginDepartment``, ``__epic.dstu2.patient``, athena
``ah_practice``) are kept in ``extras`` untouched.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from smart_app.smart.errors import MissingScopes

STANDARD = {"access_token", "token_type", "expires_in", "scope", "refresh_token", "id_token", "patient",
            "encounter", "need_patient_banner", "smart_style_url", "intent", "fhirContext", "tenant", "state"}


def as_bool(value: Any, default: bool = False) -> bool:
    """``True``/``"true"``/``"True"``/``1`` → True; ``False``/``"false"``/``0`` → False; else the default."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
    return default


@dataclass(frozen=True)
class LaunchContext:
    patient: str | None
    encounter: str | None
    fhir_user: str | None  # as the server gave it (absolute URL or relative reference)
    need_patient_banner: bool
    smart_style_url: str | None
    intent: str | None
    tenant: str | None
    scopes: frozenset[str]
    extras: dict[str, Any] = field(default_factory=dict)


def parse_context(body: dict[str, Any], claims: dict[str, Any] | None = None) -> LaunchContext:
    claims = claims or {}
    extras = {k: v for k, v in body.items() if k not in STANDARD}
    return LaunchContext(
        patient=str(body["patient"]) if body.get("patient") else None,
        encounter=str(body["encounter"]) if body.get("encounter") else None,
        fhir_user=str(claims.get("fhirUser") or body.get("fhirUser") or "") or None,
        # absent: show the banner whenever there is a patient (identifying the patient is the safe side)
        need_patient_banner=as_bool(body.get("need_patient_banner"), default=bool(body.get("patient"))),
        smart_style_url=str(body["smart_style_url"]) if body.get("smart_style_url") else None,
        intent=str(body["intent"]) if body.get("intent") else None,
        tenant=str(body["tenant"]) if body.get("tenant") else None,
        scopes=frozenset(str(body.get("scope", "")).split()), extras=extras)


def require_scopes(context: LaunchContext, required: set[str]) -> None:
    """The server may grant less than asked (the user unticked a box, the EHR drops some): say which."""
    missing = sorted(required - context.scopes)
    if missing:
        raise MissingScopes("missing: " + ", ".join(missing))


def expires_at(body: dict[str, Any], now: float | None = None) -> float:
    try:
        lifetime = int(body.get("expires_in", 300))
    except (TypeError, ValueError):
        lifetime = 300
    return (now if now is not None else time.time()) + lifetime
