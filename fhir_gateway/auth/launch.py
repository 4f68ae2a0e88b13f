"""EHR launch contexts (SMART App Launch "EHR launch"): opaque, single-use, expiring in minutes.

https://hl7.org/fhir/smart-app-launch/app-launch.html#launch-app-ehr-launch
"""
from __future__ import annotations

import re
import secrets
from typing import Any

from fhir_gateway.auth.store import EphemeralStore

LAUNCH_TTL = 300
_REF = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


class LaunchError(ValueError):
    """The launch request body is invalid."""


def validate_context(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise LaunchError("the body must be a JSON object")
    ctx: dict[str, Any] = {}
    for name in ("patient", "encounter"):
        value = body.get(name)
        if value is not None:
            if not isinstance(value, str):
                raise LaunchError(f"{name} must be a string id")
            value = value.split("/", 1)[1] if value.startswith(("Patient/", "Encounter/")) else value
            if not _ID.match(value):
                raise LaunchError(f"{name} is not a valid id")
            ctx[name] = value
    fhir_user = body.get("fhirUser")
    if fhir_user is not None and (not isinstance(fhir_user, str) or not _REF.match(fhir_user)):
        raise LaunchError("fhirUser must be a relative reference such as Practitioner/123")
    if fhir_user:
        ctx["fhirUser"] = fhir_user
    if "need_patient_banner" in body:
        if not isinstance(body["need_patient_banner"], bool):
            raise LaunchError("need_patient_banner must be a boolean")
        ctx["need_patient_banner"] = body["need_patient_banner"]
    for name in ("smart_style_url", "intent", "tenant"):
        if body.get(name) is not None:
            if not isinstance(body[name], str):
                raise LaunchError(f"{name} must be a string")
            ctx[name] = body[name]
    if body.get("fhirContext") is not None:
        items = body["fhirContext"]
        if not isinstance(items, list) or not all(
                isinstance(i, dict) and any(k in i for k in ("reference", "canonical", "identifier")) for i in items):
            raise LaunchError("fhirContext must be a list of objects with reference, canonical or identifier")
        ctx["fhirContext"] = items
    return ctx


class Launches:
    def __init__(self, store: EphemeralStore, ttl: int = LAUNCH_TTL) -> None:
        self.store = store
        self.ttl = ttl

    def create(self, context: dict[str, Any]) -> str:
        launch = secrets.token_urlsafe(24)
        self.store.put(f"launch:{launch}", context, self.ttl)
        return launch

    def take(self, launch: str) -> dict[str, Any] | None:
        return self.store.take(f"launch:{launch}")
