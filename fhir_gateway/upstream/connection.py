"""A clinic's connection: vendor profile + FHIR base + client id + where its secrets live.

Connection files (TOML, one per tenant, e.g. ``var/connections/clinic-a.toml``) hold *references*
to secrets, never the secrets: ``file:/run/secrets/epic.pem`` or ``env:CLINIC_A_SECRET``. They are
read when a token is needed, so nothing secret is stored in the database or in the file itself.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fhir_gateway.upstream.errors import UpstreamConfigError
from vendor_profiles import ProfileRegistry, VendorProfile


@dataclass(frozen=True)
class SecretRef:
    """``file:PATH`` or ``env:NAME``; :meth:`reveal` reads it when needed. Its repr shows the reference only."""

    ref: str

    def __post_init__(self) -> None:
        if not self.ref.startswith(("file:", "env:")):
            raise UpstreamConfigError("a secret must be given as file:PATH or env:NAME, never inline")

    def reveal(self) -> str:
        kind, _, where = self.ref.partition(":")
        if kind == "env":
            value = os.environ.get(where)
            if not value:
                raise UpstreamConfigError(f"environment variable {where} is not set")
            return value
        try:
            return Path(where).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UpstreamConfigError(f"cannot read secret file {where}: {exc.strerror}") from None


@dataclass(frozen=True)
class Connection:
    tenant: str
    profile: VendorProfile
    base_url: str
    client_id: str | None = None
    private_key: SecretRef | None = None  # PEM, for private_key_jwt
    key_id: str | None = None
    jku: str | None = None  # the hosted JWK Set URL (Epic requires one for backend apps)
    client_secret: SecretRef | None = None
    token_url: str | None = None  # else the profile's, else discovery
    scopes: tuple[str, ...] | None = None  # else the profile's
    practice: str | None = None  # tenancy parameter value (athena practice id); default: the tenant
    mrn_system: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fhir_base(self) -> str:
        return self.base_url.rstrip("/")

    def url(self, path: str) -> str:
        """An absolute URL under the base, joined explicitly (athena: relative resolution lost "/r4")."""
        return f"{self.fhir_base}/{path.lstrip('/')}"

    @property
    def canonical_mrn_system(self) -> str:
        return self.mrn_system or f"urn:telehub:mrn:{self.tenant}"

    @property
    def key(self) -> str:
        """A short key for caches and throttles (tenant names are operator-chosen, not PHI)."""
        return f"{self.profile.name}:{self.tenant}"

    def resolved_token_url(self) -> str | None:
        url = self.token_url or self.profile.auth.token_url
        return url.replace("{tenant}", self.tenant) if url else None

    def scope_list(self) -> list[str]:
        return list(self.scopes if self.scopes is not None else self.profile.scopes.request)

    def tenancy_params(self, hint: str | None = None) -> dict[str, str]:
        """``hint``: a practice read from the token (used only when the connection names none)."""
        spec = self.profile.tenancy
        if spec.style == "practice-param" and spec.param and spec.param_format:
            return {spec.param: spec.param_format.replace("{tenant}", self.practice or hint or self.tenant)}
        return {}


def _secret(raw: Any, name: str) -> SecretRef | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise UpstreamConfigError(f"{name} must be a string (file:PATH or env:NAME)")
    return SecretRef(raw)


def connection_from_dict(data: dict[str, Any], profiles: ProfileRegistry) -> Connection:
    try:
        tenant, vendor = str(data["tenant"]), str(data["vendor"])
    except KeyError as exc:
        raise UpstreamConfigError(f"a connection needs {exc.args[0]!r}") from None
    try:
        profile = profiles.get(vendor)
    except KeyError as exc:
        raise UpstreamConfigError(str(exc.args[0])) from None
    base = data.get("base_url") or (profile.base_url(tenant) if profile.tenancy.style != "per-customer-base" else None)
    if not base or "{" in base:
        raise UpstreamConfigError(f"connection {tenant}: base_url is required for {vendor}")
    scopes = data.get("scopes")
    return Connection(
        tenant=tenant, profile=profile, base_url=str(base), client_id=data.get("client_id"),
        private_key=_secret(data.get("private_key"), "private_key"), key_id=data.get("key_id"),
        jku=data.get("jku"), client_secret=_secret(data.get("client_secret"), "client_secret"),
        token_url=data.get("token_url"), scopes=tuple(scopes) if scopes is not None else None,
        practice=data.get("practice"), mrn_system=data.get("mrn_system"), extra=dict(data.get("extra") or {}))


def load_connection(tenant: str, directory: Path | str, profiles: ProfileRegistry | None = None) -> Connection:
    """``<directory>/<tenant>.toml``."""
    path = Path(directory) / f"{tenant}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError:
        raise UpstreamConfigError(f"no connection file for tenant {tenant!r} at {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UpstreamConfigError(f"{path}: {exc}") from None
    data.setdefault("tenant", tenant)
    return connection_from_dict(data, profiles or ProfileRegistry.load())
