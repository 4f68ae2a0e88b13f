"""Vendor flavours as data: ``flavours.toml`` loaded and validated at start-up (STYLE habit 4).

A bad file fails loudly naming the flavour and field, never at request time.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

FLAVOURS_FILE = Path(__file__).with_name("flavours.toml")
PAGING_STYLES = ("links", "session")
TOTALS = ("exact", "page-size", "omit")
OUTCOME_WHEN = ("never", "empty", "always")
ERROR_SHAPES = ("hub", "epic", "cerner", "athena")
NOT_FOUND = ("outcome", "html")
NON_JSON = ("hub", "xml", "406-empty")
BANNER = ("bool", "string")


class FlavourError(ValueError):
    """flavours.toml is invalid: the message names the flavour and the field."""


@dataclass(frozen=True)
class Paging:
    style: str = "links"
    param: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    token_prefix: str = ""
    token_format: str = "hex"  # hex | b64
    keep_query: bool = False
    ttl: int = 600
    total: str = "exact"


@dataclass(frozen=True)
class RateLimit:
    every: int = 0
    per_second: float = 0
    burst: int = 0
    retry_after: int = 1

    @property
    def enabled(self) -> bool:
        return self.every > 0 or self.per_second > 0


@dataclass(frozen=True)
class Flavour:
    name: str
    label: str
    fhir_prefix: str
    paging: Paging
    outcome: dict[str, str]
    errors: dict[str, str]
    non_json: str
    rate_limit: RateLimit
    required: dict[str, list[list[str]]]
    required_codes: dict[str, str]
    launch: dict[str, Any]
    token: dict[str, Any]
    tenant: str | None = None
    practice: str | None = None
    lenient: bool = False
    latency_ms: int = 0
    empty_create: bool = False

    @property
    def base_path(self) -> str:
        """The flavoured FHIR base below /sandbox, e.g. ``/cerner/r4/<tenant>``."""
        return f"/{self.name}/" + self.fhir_prefix.replace("{tenant}", self.tenant or "")

    @property
    def practice_ref(self) -> str | None:
        """athena's ``ah-practice`` value (vendor-notes §4.2), or None for flavours without one."""
        return f"Organization/a-1.Practice-{self.practice}" if self.practice else None


def _pick(name: str, key: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise FlavourError(f"flavours.toml [{name}] {key} must be one of {', '.join(allowed)}, not {value!r}")
    return str(value)


def _table(name: str, raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise FlavourError(f"flavours.toml [{name}] {key} must be a table")
    return value


def _non_negative(name: str, raw: dict[str, Any], key: str) -> int:
    value = raw.get(key, 0)
    if not isinstance(value, int) or value < 0:
        raise FlavourError(f"flavours.toml [{name}] {key} must be a non-negative integer")
    return value


def _required(name: str, raw: dict[str, Any]) -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {}
    for rtype, alts in _table(name, raw, "required").items():
        if not (isinstance(alts, list) and alts and all(
                isinstance(a, list) and a and all(isinstance(p, str) for p in a) for a in alts)):
            raise FlavourError(f"flavours.toml [{name}.required] {rtype} must be a list of lists of parameter names")
        out[rtype] = alts
    return out


def parse_flavour(name: str, raw: dict[str, Any]) -> Flavour:
    """One ``[flavour]`` table → :class:`Flavour`; raises :class:`FlavourError`."""
    if not isinstance(raw.get("label"), str) or not isinstance(raw.get("fhir_prefix"), str):
        raise FlavourError(f"flavours.toml [{name}] needs label and fhir_prefix strings")
    pg = _table(name, raw, "paging")
    try:
        paging = Paging(**pg)
        rate = RateLimit(**_table(name, raw, "rate_limit"))
    except TypeError as exc:
        raise FlavourError(f"flavours.toml [{name}] paging/rate_limit: {exc}") from None
    _pick(name, "paging.style", paging.style, PAGING_STYLES)
    _pick(name, "paging.total", paging.total, TOTALS)
    if paging.style == "session" and not paging.param:
        raise FlavourError(f"flavours.toml [{name}] paging.param is required with style = session")
    outcome = _table(name, raw, "outcome")
    _pick(name, "outcome.when", outcome.get("when", "never"), OUTCOME_WHEN)
    errors = _table(name, raw, "errors")
    _pick(name, "errors.shape", errors.get("shape", "hub"), ERROR_SHAPES)
    _pick(name, "errors.not_found", errors.get("not_found", "outcome"), NOT_FOUND)
    launch = _table(name, raw, "launch")
    _pick(name, "launch.need_patient_banner", launch.get("need_patient_banner", "bool"), BANNER)
    if "{tenant}" in raw["fhir_prefix"] and not raw.get("tenant"):
        raise FlavourError(f"flavours.toml [{name}] fhir_prefix has {{tenant}} but no tenant is set")
    return Flavour(name=name, label=raw["label"], fhir_prefix=raw["fhir_prefix"].strip("/"), paging=paging,
                   outcome={"when": "never", **outcome}, errors={"shape": "hub", "not_found": "outcome", **errors},
                   non_json=_pick(name, "accept.non_json", _table(name, raw, "accept").get("non_json", "hub"),
                                  NON_JSON),
                   rate_limit=rate, required=_required(name, raw),
                   required_codes={str(k): str(v) for k, v in _table(name, raw, "required_codes").items()},
                   launch=launch, token=_table(name, raw, "token"), tenant=raw.get("tenant"),
                   practice=str(raw["practice"]) if raw.get("practice") else None,
                   lenient=bool(raw.get("lenient", False)), latency_ms=_non_negative(name, raw, "latency_ms"),
                   empty_create=bool(raw.get("empty_create", False)))


def load_flavours(path: Path | None = None, overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Flavour]:
    """Load every flavour; ``overrides`` replaces whole top-level knobs per flavour (tests: a 429 rate)."""
    source = path or FLAVOURS_FILE
    try:
        data = tomllib.loads(source.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise FlavourError(f"{source}: {exc}") from None
    flavours = {name: parse_flavour(name, raw) for name, raw in data.items()}
    for name, knobs in (overrides or {}).items():
        if name not in flavours:
            raise FlavourError(f"override for unknown flavour {name!r}")
        flavour = flavours[name]
        if "rate_limit" in knobs:
            flavour = replace(flavour, rate_limit=RateLimit(**knobs["rate_limit"]))
        if "paging" in knobs:
            flavour = replace(flavour, paging=replace(flavour.paging, **knobs["paging"]))
        if "latency_ms" in knobs:
            flavour = replace(flavour, latency_ms=int(knobs["latency_ms"]))
        flavours[name] = flavour
    return flavours
