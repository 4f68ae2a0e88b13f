"""The search-parameter registry, built from the R4 SearchParameter definitions (data, not code).

https://hl7.org/fhir/R4/searchparameter.html. One :class:`SearchParam` per
(resource type, code); multi-base parameters such as ``clinical-patient`` are
split so each type keeps only its own branch of the FHIRPath union.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fhir_gateway import definitions

SEARCH_TYPES = ("number", "date", "string", "token", "reference", "composite", "quantity", "uri", "special")


@dataclass(frozen=True)
class Component:
    """One component of a composite parameter: the component's own parameter and its relative path."""

    param: SearchParam
    expression: str


@dataclass(frozen=True)
class SearchParam:
    code: str
    type: str
    resource_type: str
    expression: str | None
    url: str
    targets: tuple[str, ...] = ()
    components: tuple[Component, ...] = ()
    comparators: tuple[str, ...] = ()
    modifiers: tuple[str, ...] = ()
    description: str = ""
    origin: str = "r4"
    definition: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)


def split_union(expression: str) -> list[str]:
    """Split a FHIRPath expression on top-level ``|`` (outside parentheses and string literals)."""
    parts: list[str] = []
    depth = 0
    quote = False
    current: list[str] = []
    for ch in expression:
        if ch == "'" :
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
        if ch == "|" and depth == 0 and not quote:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


# Known errata in the R4 definitions, corrected as R5 did (the component expressions are swapped).
_COMPONENT_ERRATA: dict[str, dict[str, str]] = {
    "http://hl7.org/fhir/SearchParameter/DocumentReference-relationship": {
        "http://hl7.org/fhir/SearchParameter/DocumentReference-relatesto": "target",
        "http://hl7.org/fhir/SearchParameter/DocumentReference-relation": "code",
    },
}


def _fixed_components(d: Mapping[str, Any]) -> list[dict[str, Any]]:
    fixes = _COMPONENT_ERRATA.get(d.get("url", ""), {})
    return [{**c, "expression": fixes.get(c["definition"], c["expression"])} for c in d.get("component", [])]


def _root(branch: str) -> str:
    return branch.lstrip("(").split(".", 1)[0].split(" ", 1)[0]


def expression_for(expression: str | None, resource_type: str, bases: Iterable[str]) -> str | None:
    """Keep only the union branches of ``expression`` that apply to ``resource_type``."""
    if not expression:
        return None
    bases = list(bases)
    if len(bases) == 1 and bases[0] in ("Resource", "DomainResource"):
        return expression
    branches = [b for b in split_union(expression) if _root(b) == resource_type]
    if not branches:
        return None
    return " | ".join(branches)


class SearchRegistry:
    """All search parameters by (resource type, code), plus the common ones every type inherits."""

    def __init__(self, definitions_list: Iterable[Mapping[str, Any]], resource_types: Iterable[str]) -> None:
        self.resource_types: frozenset[str] = frozenset(resource_types)
        self._by_type: dict[str, dict[str, SearchParam]] = {t: {} for t in self.resource_types}
        self._by_url: dict[str, SearchParam] = {}
        defs = list(definitions_list)
        by_url = {d["url"]: d for d in defs}
        for d in defs:
            for base in d["base"]:
                targets = [base] if base not in ("Resource", "DomainResource") else sorted(self.resource_types)
                for rtype in targets:
                    if rtype not in self._by_type:
                        continue
                    param = self._make(d, rtype, by_url)
                    if param is None:
                        continue
                    self._by_type[rtype].setdefault(param.code, param)
                    self._by_url.setdefault(d["url"], param)

    def _make(self, d: Mapping[str, Any], rtype: str, by_url: Mapping[str, Mapping[str, Any]]) -> SearchParam | None:
        expression = expression_for(d.get("expression"), rtype, d["base"])
        if d.get("expression") and expression is None:
            return None
        components: list[Component] = []
        for comp in _fixed_components(d):
            target = by_url.get(comp["definition"])
            if target is None:
                continue
            sub = SearchParam(code=target["code"], type=target["type"], resource_type=rtype,
                              expression=comp["expression"], url=target["url"],
                              targets=tuple(target.get("target", ())), definition=target)
            components.append(Component(sub, comp["expression"]))
        return SearchParam(
            code=d["code"], type=d["type"], resource_type=rtype, expression=expression, url=d["url"],
            targets=tuple(d.get("target", ())), components=tuple(components),
            comparators=tuple(d.get("comparator", ())), modifiers=tuple(d.get("modifier", ())),
            description=d.get("description", ""), origin=d.get("origin", "r4"), definition=d,
        )

    def get(self, resource_type: str, code: str) -> SearchParam | None:
        return self._by_type.get(resource_type, {}).get(code)

    def for_type(self, resource_type: str) -> Mapping[str, SearchParam]:
        return self._by_type.get(resource_type, {})

    def by_url(self, url: str) -> SearchParam | None:
        return self._by_url.get(url)

    def all(self) -> Iterable[SearchParam]:
        for params in self._by_type.values():
            yield from params.values()


_default: SearchRegistry | None = None


def default_registry() -> SearchRegistry:
    """The registry of the packaged R4 + US Core definitions (built once per process)."""
    global _default
    if _default is None:
        _default = SearchRegistry(definitions.search_parameter_definitions(), definitions.resource_types())
    return _default
