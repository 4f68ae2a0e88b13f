"""Blind indexes: identifying search values stored as keyed HMAC-SHA256 digests, never as plaintext.

:class:`BlindIndexHasher` implements the :class:`~fhir_gateway.search.hashing.BlindIndexer`
seam (see that module for what the index writer and query compiler do with it);
:class:`BlindPolicy` (loaded from ``blinded_parameters.toml`` beside this module by
:func:`load_policy`) says which search parameters of which resource types are
blinded, and why. ``docs/blind-indexes.md`` is the prose version.

Digest construction::

    subkey(rtype, param, kind) = HMAC-SHA256(K, "telehub/blind-index/v1" ‖ lp(rtype) ‖ lp(param) ‖ lp(kind))
    digest = base64url(HMAC-SHA256(subkey, utf8(value))[:16])      # 22 characters, no padding

``lp`` is a 2-byte length prefix, so the domain encoding is unambiguous. One
subkey per (resource type, parameter, kind): equal values under different
parameters (a phone number that is also an identifier, a family name that is
also a city) or types give unrelated digests, and a prefix digest never equals an
exact or token digest. ``K`` is the blind-index key — 32 random bytes, separate
from the data-encryption keys — so neither key compromises the other.

Why 128 bits is enough: without ``K`` nothing about the digests can be checked
offline, so the length only has to make accidental collisions (a false match
between two different values of one parameter) negligible: with ``n`` distinct
values per domain the chance is about ``n² / 2¹²⁹`` — 1.5·10⁻²¹ for a billion.
With ``K``, a dictionary attack succeeds at any length, so longer digests would buy
nothing and cost index space on every row.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fhir_gateway.search.hashing import STRING_VALUE_MAX, BlindMode, DigestKind
from fhir_gateway.search.registry import SearchRegistry, default_registry

__all__ = ["DIGEST_BYTES", "BlindIndexHasher", "BlindPolicy", "PolicyEntry", "PolicyError", "load_policy"]

DIGEST_BYTES = 16
MIN_KEY_BYTES = 32
_DOMAIN = b"telehub/blind-index/v1"
_POLICY_FILE = "blinded_parameters.toml"
ANY_TYPE = "*"
REFERENCE_IDENTIFIER = "*:identifier"  # the ``<reference param>:identifier`` rows of every reference parameter
_BLINDABLE_TYPES = frozenset({"string", "token", "date"})


class PolicyError(ValueError):
    """The blind-index policy file is malformed or names a parameter the registry does not define."""


@dataclass(frozen=True, slots=True)
class PolicyEntry:
    """One ``[[blind]]`` or ``[[omit]]`` table of the policy file."""

    mode: BlindMode
    types: tuple[str, ...]
    params: tuple[str, ...]
    reason: str


class BlindPolicy:
    """Which index-row parameters of which resource types are blinded (or omitted)."""

    def __init__(self, entries: Iterable[PolicyEntry]) -> None:
        self.entries: tuple[PolicyEntry, ...] = tuple(entries)
        self._exact: dict[tuple[str, str], BlindMode] = {}
        self._any_type: dict[str, BlindMode] = {}
        self._reference_identifier: dict[str, BlindMode] = {}
        for entry in self.entries:
            for param in entry.params:
                for rtype in entry.types:
                    if param == REFERENCE_IDENTIFIER:
                        self._put(self._reference_identifier, rtype, entry.mode)
                    elif rtype == ANY_TYPE:
                        self._put(self._any_type, param, entry.mode)
                    else:
                        self._put(self._exact, (rtype, param), entry.mode)
        self._cache: dict[tuple[str, str], BlindMode | None] = {}

    @staticmethod
    def _put(table: dict[Any, BlindMode], key: Any, mode: BlindMode) -> None:
        if table.get(key) == "omit":  # omitting is stronger than blinding
            return
        table[key] = mode

    def mode(self, rtype: str, param: str) -> BlindMode | None:
        """The mode of an index row ``param`` (``name``, ``subject:identifier``; never ``P$k``) of ``rtype``."""
        key = (rtype, param)
        try:
            return self._cache[key]
        except KeyError:
            pass
        found: BlindMode | None = None
        if "$" not in param:
            candidates: list[BlindMode | None] = [self._exact.get(key), self._any_type.get(param)]
            if param.endswith(":identifier"):
                candidates += [self._reference_identifier.get(rtype), self._reference_identifier.get(ANY_TYPE)]
            modes = {m for m in candidates if m is not None}
            found = "omit" if "omit" in modes else ("blind" if modes else None)
        self._cache[key] = found
        return found

    def reason(self, rtype: str, param: str) -> str | None:
        """Why ``param`` of ``rtype`` is blinded or omitted (None if it is not)."""
        for entry in self.entries:
            types_match = ANY_TYPE in entry.types or rtype in entry.types
            if types_match and (param in entry.params
                                or (param.endswith(":identifier") and REFERENCE_IDENTIFIER in entry.params)):
                return entry.reason
        return None

    def blinded(self, registry: SearchRegistry) -> dict[str, list[str]]:
        """Every blinded/omitted search parameter per resource type (the reference-identifier rule not expanded)."""
        out: dict[str, list[str]] = {}
        for rtype in sorted(registry.resource_types):
            codes = sorted(code for code in registry.for_type(rtype) if self.mode(rtype, code) is not None)
            if self.mode(rtype, "x:identifier") is not None:
                codes.append(REFERENCE_IDENTIFIER)
            if codes:
                out[rtype] = codes
        return out


def _entries(data: Mapping[str, Any]) -> list[PolicyEntry]:
    if data.get("version") != 1:
        raise PolicyError("blind-index policy: expected version = 1")
    unknown = set(data) - {"version", "blind", "omit"}
    if unknown:
        raise PolicyError(f"blind-index policy: unknown keys {sorted(unknown)}")
    entries: list[PolicyEntry] = []
    for mode in ("blind", "omit"):
        tables = data.get(mode, [])
        if not isinstance(tables, list):
            raise PolicyError(f"blind-index policy: [[{mode}]] must be an array of tables")
        for i, table in enumerate(tables):
            where = f"blind-index policy [[{mode}]] #{i + 1}"
            if not isinstance(table, dict) or set(table) != {"types", "params", "reason"}:
                raise PolicyError(f"{where}: expected exactly types, params and reason")
            types, params, reason = table["types"], table["params"], table["reason"]
            if (not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types)
                    or not isinstance(params, list) or not params or not all(isinstance(p, str) for p in params)):
                raise PolicyError(f"{where}: types and params must be non-empty lists of strings")
            if not isinstance(reason, str) or not reason.strip():
                raise PolicyError(f"{where}: every entry needs a reason")
            entries.append(PolicyEntry(mode, tuple(types), tuple(params), " ".join(reason.split())))
    return entries


def _validate(entries: list[PolicyEntry], registry: SearchRegistry) -> None:
    """A misspelt type or parameter would silently leave values in plaintext: refuse it."""
    for entry in entries:
        for rtype in entry.types:
            if rtype != ANY_TYPE and rtype not in registry.resource_types:
                raise PolicyError(f"blind-index policy: unknown resource type {rtype!r}")
        for code in entry.params:
            if code == REFERENCE_IDENTIFIER:
                continue
            types = sorted(registry.resource_types) if ANY_TYPE in entry.types else list(entry.types)
            found = [p for p in (registry.get(t, code) for t in types) if p is not None]
            if ANY_TYPE not in entry.types and len(found) != len(types):
                missing = [t for t in types if registry.get(t, code) is None]
                raise PolicyError(f"blind-index policy: {missing} define no search parameter {code!r}")
            if not found:
                raise PolicyError(f"blind-index policy: no resource type defines {code!r}")
            bad = sorted({p.type for p in found} - _BLINDABLE_TYPES)
            if bad:
                raise PolicyError(f"blind-index policy: {code!r} is of type {bad}; only string, token and date "
                                  "parameters can be blinded")


def load_policy(path: str | Path | None = None, registry: SearchRegistry | None = None) -> BlindPolicy:
    """The policy in ``path`` (default: the packaged ``blinded_parameters.toml``), checked against ``registry``."""
    if path is None:
        text = resources.files("fhir_gateway.crypto").joinpath(_POLICY_FILE).read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"blind-index policy: {exc}") from None
    entries = _entries(data)
    _validate(entries, registry or default_registry())
    return BlindPolicy(entries)


def _lp(text: str) -> bytes:
    raw = text.encode("utf-8")
    return len(raw).to_bytes(2, "big") + raw


class _Mac:
    """HMAC-SHA256 under one subkey with the keyed inner and outer SHA-256 states precomputed (RFC 2104).

    Byte for byte ``hmac.digest(subkey, m, "sha256")``, at a fraction of its set-up
    cost per call; :meth:`prefixes` also feeds a value to the inner hash once for
    all of its prefixes.
    """

    __slots__ = ("inner", "outer")

    def __init__(self, key: bytes) -> None:
        block = key.ljust(64, b"\0")  # SHA-256 block size; a subkey is 32 bytes
        self.inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self.outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def tag(self, message: bytes) -> str:
        inner = self.inner.copy()
        inner.update(message)
        return self._finish(inner)

    def _finish(self, inner: Any) -> str:
        outer = self.outer.copy()
        outer.update(inner.digest())
        return base64.urlsafe_b64encode(outer.digest()[:DIGEST_BYTES]).rstrip(b"=").decode("ascii")

    def prefixes(self, value: str) -> list[str]:
        inner = self.inner.copy()
        out: list[str] = []
        for ch in value:
            inner.update(ch.encode("utf-8", "surrogatepass"))
            out.append(self._finish(inner))
        return out


class BlindIndexHasher:
    """HMAC-SHA256 blind indexes under ``key`` for the parameters ``policy`` blinds (a ``BlindIndexer``)."""

    def __init__(self, key: bytes, policy: BlindPolicy) -> None:
        if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the blind-index key must be at least {MIN_KEY_BYTES} random bytes")
        self._key = key
        self.policy = policy
        self._macs: dict[tuple[str, str, str], _Mac] = {}

    def __repr__(self) -> str:  # never the key
        return f"BlindIndexHasher(<key>, {len(self.policy.entries)} policy entries)"

    def mode(self, rtype: str, param: str) -> BlindMode | None:
        return self.policy.mode(rtype, param)

    def _mac(self, rtype: str, param: str, kind: str) -> _Mac:
        domain = (rtype, param, kind)
        mac = self._macs.get(domain)
        if mac is None:
            subkey = hmac.digest(self._key, _DOMAIN + _lp(rtype) + _lp(param) + _lp(kind), hashlib.sha256)
            mac = self._macs[domain] = _Mac(subkey)
        return mac

    def digest(self, rtype: str, param: str, kind: DigestKind, value: str) -> str:
        return self._mac(rtype, param, kind).tag(value.encode("utf-8", "surrogatepass"))

    def prefix_digests(self, rtype: str, param: str, normalized: str) -> list[str]:
        """``[digest(rtype, param, "prefix", p) for p in string_prefixes(normalized)]``, computed incrementally."""
        return self._mac(rtype, param, "prefix").prefixes(normalized[:STRING_VALUE_MAX])

    def protect(self, rtype: str, param: str, value: str) -> str:
        if self.policy.mode(rtype, param) is None:
            return value
        return self.digest(rtype, param, "token", value)
