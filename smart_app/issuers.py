"""Trusted EHR issuers and their vendor quirks, looked up by ``iss``.

The settings list which FHIR bases may launch the app (anything else is refused before any request
is made to it) and which vendor profile each one follows; the quirks themselves are data in
``vendor_profiles/data/*.toml`` (STYLE.md: register, don't branch — no ``if vendor == "epic"`` here).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from smart_app.settings import TrustedIssuer
from smart_app.smart.errors import UntrustedIssuer


@dataclass(frozen=True)
class Quirks:
    """What the app needs from a vendor profile (a small, typed view of it)."""

    vendor: str
    accept: str = "application/fhir+json"
    practice_param: str | None = None  # athena: ah-practice on every request
    practice_format: str | None = None  # "Organization/a-1.Practice-{tenant}"
    mrn_rules: tuple[dict[str, str], ...] = ()
    banner_as_string: bool = False


def _quirks(vendor: str, profiles: Any) -> Quirks:
    if profiles is None or vendor not in profiles:
        return Quirks(vendor)
    p = profiles.get(vendor)
    rules = tuple({k: v for k, v in rule.model_dump().items() if v} for rule in p.identifiers.mrn)
    return Quirks(vendor=vendor, accept=p.content.accept, practice_param=p.tenancy.param,
                  practice_format=p.tenancy.param_format, mrn_rules=rules, banner_as_string=p.launch.banner_as_string)


def load_profiles() -> Any:
    """The vendor profile registry (``vendor_profiles`` has a loader); None if it cannot be loaded."""
    try:
        from vendor_profiles import ProfileRegistry
    except ImportError:  # pragma: no cover - the package is part of the repository
        return None
    return ProfileRegistry.load()


class Issuers:
    def __init__(self, trusted: tuple[TrustedIssuer, ...], profiles: Any = None) -> None:
        self._by_iss = {t.iss.rstrip("/"): _quirks(t.vendor, profiles) for t in trusted}

    def resolve(self, iss: str) -> tuple[str, Quirks]:
        """The normalised ``iss`` and its quirks, or :class:`UntrustedIssuer` (checked before any request)."""
        norm = iss.strip().rstrip("/")
        if not re.match(r"^https?://", norm) or norm not in self._by_iss:
            raise UntrustedIssuer(f"iss not in the trusted list: {norm[:200]}")
        return norm, self._by_iss[norm]

    def __contains__(self, iss: object) -> bool:
        return isinstance(iss, str) and iss.rstrip("/") in self._by_iss


def practice_query(quirks: Quirks, extras: dict[str, Any]) -> list[tuple[str, str]]:
    """Extra query parameters a vendor needs on every FHIR request (athena ``ah-practice``)."""
    practice = extras.get("ah_practice")
    if quirks.practice_param and practice:
        return [(quirks.practice_param, f"Organization/{practice}")]
    return []


def is_mrn(identifier: dict[str, Any], rules: tuple[dict[str, str], ...]) -> bool:
    system = str(identifier.get("system", ""))
    itype = identifier.get("type") or {}
    codes = {c.get("code") for c in itype.get("coding", [])}
    for rule in rules:
        if ("system" in rule and system != rule["system"]) or \
                ("system_regex" in rule and not re.match(rule["system_regex"], system)) or \
                ("type_text" in rule and itype.get("text") != rule["type_text"]) or \
                ("type_code" in rule and rule["type_code"] not in codes):
            continue
        return True
    return False
