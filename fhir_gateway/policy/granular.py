"""SMART granular scopes (``patient/Observation.rs?category=…|laboratory``): what a token may see, in
Python (one resource) and in SQL (searches, history, conditional matches).

https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#finer-grained-resource-constraints-using-search-parameters

A scope's query is a conjunction of ``param=value`` pairs; several scopes for one type are OR-ed, and
any unfiltered scope for the type lifts the restriction. Supported filters are token parameters
(``system|code``, ``code``, ``system|``, ``|code``) — what the SMART spec and the (g)(10) test kit use
(category on Observation and Condition). Anything else (another parameter type, a modifier, an
unknown parameter) matches nothing: an unsupported filter fails closed rather than granting more.
The same :class:`TokenFilter` answers both questions, so a resource a filtered search returns is
exactly one a filtered read allows.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select, true

from fhir_gateway.search.extract import IndexExtractor
from fhir_gateway.search.registry import SearchRegistry
from fhir_gateway.storage.tables import idx_token

Query = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class TokenFilter:
    """One ``param=value`` pair of a scope's query, as a token match (``None`` parts match anything)."""

    param: str
    system: str | None
    code: str | None
    no_system: bool = False

    def matches(self, system: str | None, code: str | None) -> bool:
        if self.no_system and system:
            return False
        if self.system is not None and system != self.system:
            return False
        return self.code is None or code == self.code


def _token(param: str, value: str) -> TokenFilter:
    if "|" not in value:
        return TokenFilter(param, None, value or None)
    system, _, code = value.partition("|")
    return TokenFilter(param, system or None, code or None, no_system=system == "")


class GranularFilters:
    """Turns a token's scope queries into a per-resource test and a SQL condition."""

    def __init__(self, registry: SearchRegistry, extractor: IndexExtractor) -> None:
        self.registry = registry
        self.extractor = extractor

    def _compile(self, rtype: str, query: Query) -> list[TokenFilter | None]:
        """Each pair as a :class:`TokenFilter`, or ``None`` where it cannot be honoured (fails closed)."""
        out: list[TokenFilter | None] = []
        for name, value in query:
            param = self.registry.get(rtype, name)
            if ":" in name or param is None or param.type != "token" or "," in value:
                out.append(None)
            else:
                out.append(_token(name, value))
        return out

    def allows(self, resource: dict[str, Any], queries: Sequence[Query]) -> bool:
        """Whether ``resource`` satisfies at least one of ``queries`` (``()`` in it means unfiltered)."""
        if any(not q for q in queries):
            return True
        rtype = str(resource.get("resourceType"))
        rows = self.extractor.extract(dict(resource)).token
        for query in queries:
            filters = self._compile(rtype, query)
            if all(f is not None and any(r.param == f.param and f.matches(r.system, r.code) for r in rows)
                   for f in filters):
                return True
        return False

    def condition(self, rtype: str, queries: Sequence[Query], pk: ColumnElement[Any]) -> ColumnElement[bool]:
        """SQL: the row (``pk`` of a resource of type ``rtype``) satisfies one of ``queries``."""
        if any(not q for q in queries):
            return true()
        alternatives: list[ColumnElement[bool]] = []
        for query in queries:
            filters = self._compile(rtype, query)
            if any(f is None for f in filters):
                continue
            alternatives.append(and_(*(pk.in_(_token_rows(rtype, f)) for f in filters if f is not None)))
        return or_(*alternatives) if alternatives else false()


def _token_rows(rtype: str, f: TokenFilter) -> Any:
    t = idx_token
    conds = [t.c.rtype == rtype, t.c.param == f.param]
    if f.code is not None:
        conds.append(t.c.code == f.code)
    if f.system is not None:
        conds.append(t.c.system == f.system)
    elif f.no_system:
        conds.append(t.c.system.is_(None))
    return select(t.c.resource_pk).where(*conds)
