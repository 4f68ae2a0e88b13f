"""Interstate licensure compacts, loaded from ``data/compacts.toml`` and the membership CSVs.

Validated at load: every compact names a known kind, its CSV exists and its status column is
present. See ``data/SOURCES.md`` for where the membership facts come from and how old they are.
"""
from __future__ import annotations

import csv
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

DATA = Path(__file__).with_name("data")
CompactKind = Literal["expedited-pathway", "multistate-licence", "practice-authority"]
KINDS: tuple[CompactKind, ...] = ("expedited-pathway", "multistate-licence", "practice-authority")


@dataclass(frozen=True)
class Compact:
    key: str
    name: str
    kind: CompactKind
    licence_kind: str | None  # the Practitioner.qualification licence kind that invokes it
    issuing: frozenset[str]  # USPS codes whose boards issue the compact licence/authority's base
    honouring: frozenset[str]  # USPS codes where it may be used
    as_of: dict[str, str]  # per state, when the status was last confirmed
    names: dict[str, str]  # USPS code → jurisdiction name


@dataclass(frozen=True)
class CompactRules:
    compacts: tuple[Compact, ...]

    def by_licence_kind(self, kind: str) -> Compact | None:
        return next((c for c in self.compacts if c.licence_kind == kind), None)

    def of_kind(self, kind: CompactKind) -> tuple[Compact, ...]:
        return tuple(c for c in self.compacts if c.kind == kind)

    def jurisdiction_names(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for c in self.compacts:
            out.update(c.names)
        return out


def load(data_dir: Path = DATA) -> CompactRules:
    """Read and check the compact rules; raise ValueError naming the bad entry."""
    with (data_dir / "compacts.toml").open("rb") as fh:
        raw = tomllib.load(fh)
    compacts = []
    for key, spec in sorted(raw.get("compacts", {}).items()):
        kind = spec.get("kind")
        if kind not in KINDS:
            raise ValueError(f"compact {key}: kind must be one of {', '.join(KINDS)}")
        path = data_dir / spec["file"]
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        column = spec["status_column"]
        if rows and column not in rows[0]:
            raise ValueError(f"compact {key}: {path.name} has no column {column!r}")
        issuing = {r["code"] for r in rows if _matches(r[column], spec["issuing_status_prefixes"])}
        honouring = {r["code"] for r in rows if _matches(r[column], spec["honouring_status_prefixes"])}
        compacts.append(Compact(key, spec["name"], kind, spec.get("licence_kind"), frozenset(issuing),
                                frozenset(honouring), {r["code"]: r["as_of"] for r in rows},
                                {r["code"]: r["jurisdiction"] for r in rows}))
    return CompactRules(tuple(compacts))


@cache
def default_rules() -> CompactRules:
    return load()


def _matches(status: str, prefixes: list[str]) -> bool:
    return any(status.strip().lower().startswith(p.lower()) for p in prefixes)
