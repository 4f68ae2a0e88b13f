"""The SMART app's settings: defaults < environment (``TELEHUB_APP_*``), passed into ``create_app``.

The app is deployable on its own, so it has its own settings (not the hub's): where the hub's FHIR
API is, its OAuth client identities, which EHRs it trusts, where sessions live and the key that
encrypts them. Nothing below :func:`smart_app.app.create_app` reads the environment.
"""
from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PREFIX = "TELEHUB_APP_"
DEFAULT_BACKEND_SCOPE = " ".join(f"system/{t}.cruds" for t in (
    "Patient", "Practitioner", "PractitionerRole", "Location", "Organization", "Schedule", "Slot", "Appointment",
    "Encounter", "Communication", "Consent", "HealthcareService"))


class AppSettingsError(ValueError):
    """A setting is missing or malformed: raised at start-up, never at request time."""


@dataclass(frozen=True)
class TrustedIssuer:
    """An EHR FHIR base the app accepts as ``iss``, and the vendor profile that describes its quirks."""

    iss: str
    vendor: str = "generic-r4"
    tenant: str | None = None  # the hub's clinic connection for this EHR: launches sync through it ($ehr-sync)


@dataclass(frozen=True)
class AppSettings:
    hub_base: str  # the hub's FHIR base, e.g. http://127.0.0.1:8080/fhir
    public_url: str  # where the app is reached, e.g. http://127.0.0.1:8080/app (redirect_uri, launch_uri)
    client_id: str = "telehub-app"  # the user-facing (launch) client: confidential, client_secret_basic
    client_secret: str = field(default="", repr=False)
    backend_client_id: str = "telehub-app-backend"  # backend services: private_key_jwt, RS384
    backend_key: dict[str, Any] | None = field(default=None, repr=False)  # private JWK
    backend_scope: str = DEFAULT_BACKEND_SCOPE
    trusted_issuers: tuple[TrustedIssuer, ...] = ()
    redis_url: str | None = None
    redis_prefix: str = "telehub:app:"
    secret_key: bytes = field(default=b"", repr=False)  # ≥ 32 bytes: session encryption and cookie ids
    frame_ancestors: str = "'self'"
    cookie_samesite: str = "Lax"  # "None" when the EHR frames the app from another site (adds Secure)
    session_idle_seconds: int = 15 * 60
    timezone: str = "America/New_York"  # the clinic's zone when the practitioner has none
    env: str = "dev"
    sync_max_age: int = 900  # s: a launch re-syncs the patient from the EHR when the hub's copy is older

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_url.rstrip('/')}/callback"

    @property
    def launch_uri(self) -> str:
        return f"{self.public_url.rstrip('/')}/launch"

    def check(self) -> AppSettings:
        if len(self.secret_key) < 32:
            raise AppSettingsError("TELEHUB_APP_SECRET_KEY_FILE must hold at least 32 bytes (base64)")
        if not self.client_secret:
            raise AppSettingsError("TELEHUB_APP_CLIENT_SECRET is required (the launch client is confidential)")
        if self.sync_max_age < 0:
            raise AppSettingsError("TELEHUB_APP_SYNC_MAX_AGE must be a number of seconds, 0 or more")
        if self.cookie_samesite not in ("Lax", "Strict", "None"):
            raise AppSettingsError("TELEHUB_APP_COOKIE_SAMESITE must be Lax, Strict or None")
        return self


def parse_issuers(raw: str) -> tuple[TrustedIssuer, ...]:
    """``"https://ehr/fhir=epic:clinic-a, https://hub/fhir"`` → issuers (vendor defaults to generic-r4; the
    optional ``:tenant`` names the hub's connection for that EHR, so launches sync the patient first)."""
    out = []
    for item in (p.strip() for p in raw.split(",")):
        if not item:
            continue
        iss, _, spec = item.partition("=")
        vendor, _, tenant = spec.partition(":")
        out.append(TrustedIssuer(iss.strip().rstrip("/"), vendor.strip() or "generic-r4", tenant.strip() or None))
    return tuple(out)


def _seconds(raw: str | None, name: str) -> int:
    try:
        return int(raw or 0)
    except ValueError:
        raise AppSettingsError(f"{PREFIX}{name} must be a whole number of seconds") from None


def _read_key_file(path: str) -> bytes:
    try:
        return base64.b64decode(Path(path).read_text().strip(), validate=True)
    except (OSError, ValueError) as exc:
        raise AppSettingsError(f"cannot read the secret key file {path}: {exc}") from None


def _read_jwk(path: str) -> dict[str, Any]:
    import json

    try:
        found: dict[str, Any] = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise AppSettingsError(f"cannot read the backend key file {path}: {exc}") from None
    return found


def load_app_settings(environ: dict[str, str] | None = None, **overrides: Any) -> AppSettings:
    """Settings from ``TELEHUB_APP_*``: HUB_BASE, PUBLIC_URL, CLIENT_ID, CLIENT_SECRET, BACKEND_CLIENT_ID,
    BACKEND_KEY_FILE (private JWK JSON), BACKEND_SCOPE, TRUSTED_ISSUERS, REDIS_URL, SECRET_KEY_FILE,
    FRAME_ANCESTORS, COOKIE_SAMESITE, TIMEZONE, ENV, SYNC_MAX_AGE."""
    env = dict(os.environ if environ is None else environ)

    def get(name: str, default: str | None = None) -> str | None:
        return env.get(PREFIX + name, default)

    hub_base = (get("HUB_BASE") or "http://127.0.0.1:8080/fhir").rstrip("/")
    values: dict[str, Any] = {
        "hub_base": hub_base, "public_url": (get("PUBLIC_URL") or "http://127.0.0.1:8080/app").rstrip("/"),
        "client_id": get("CLIENT_ID", "telehub-app"), "client_secret": get("CLIENT_SECRET", ""),
        "backend_client_id": get("BACKEND_CLIENT_ID", "telehub-app-backend"),
        "backend_scope": get("BACKEND_SCOPE", DEFAULT_BACKEND_SCOPE),
        "trusted_issuers": parse_issuers(get("TRUSTED_ISSUERS") or hub_base),
        "redis_url": get("REDIS_URL") or None, "frame_ancestors": get("FRAME_ANCESTORS", "'self'"),
        "cookie_samesite": get("COOKIE_SAMESITE", "Lax"), "timezone": get("TIMEZONE", "America/New_York"),
        "env": get("ENV", "dev"), "sync_max_age": _seconds(get("SYNC_MAX_AGE", "900"), "SYNC_MAX_AGE")}
    if get("SECRET_KEY_FILE"):
        values["secret_key"] = _read_key_file(str(get("SECRET_KEY_FILE")))
    if get("BACKEND_KEY_FILE"):
        values["backend_key"] = _read_jwk(str(get("BACKEND_KEY_FILE")))
    values.update(overrides)
    return AppSettings(**values).check()
