"""Runs a parsed search against the repository: matching page, total, and includes.

Paging: the first page fixes a *snapshot* (the highest resource pk then) that
every later page carries, so resources created meanwhile cannot push entries
from one page onto the next; ``_offset`` selects the page.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from sqlalchemy import ColumnElement, Connection, func, select

from fhir_gateway.search import compile as search_compile
from fhir_gateway.search import includes as search_includes
from fhir_gateway.search.compile import InnerScope
from fhir_gateway.search.hashing import IndexHasher
from fhir_gateway.search.parse import parse_search
from fhir_gateway.search.query_model import IncludeSpec, SearchRequest
from fhir_gateway.search.registry import SearchRegistry
from fhir_gateway.settings import Settings
from fhir_gateway.storage.repository import Repository, StoredResource
from fhir_gateway.storage.tables import resource

MAX_INCLUDE_ITERATIONS = 4
MAX_INCLUDED = 5000
_SNAPSHOT = select(func.coalesce(func.max(resource.c.pk), 0))  # built once: its cache key is memoized


@dataclass
class SearchResult:
    matches: list[StoredResource]
    included: list[StoredResource] = field(default_factory=list)
    total: int | None = None
    snapshot: int = 0
    offset: int = 0
    count: int = 0
    has_more: bool = False


class SearchService:
    def __init__(self, registry: SearchRegistry, repository: Repository, hasher: IndexHasher,
                 settings: Settings) -> None:
        self.registry = registry
        self.repository = repository
        self.hasher = hasher
        self.settings = settings

    def parse(self, rtype: str | None, params: list[tuple[str, str]], *, lenient: bool = False) -> SearchRequest:
        return parse_search(self.registry, rtype, params, lenient=lenient, max_count=self.settings.max_page_size,
                            base_url=self.settings.fhir_base)

    def find(self, conn: Connection, rtype: str, params: list[tuple[str, str]], *, limit: int = 2,
             scope: ColumnElement[bool] | None = None, inner_scope: InnerScope | None = None,
             ) -> list[StoredResource]:
        """Resources matching a conditional-interaction query (strict: unknown parameters are an error)."""
        request = self.parse(rtype, params)
        stmt = search_compile.match_query(self.registry, request, self.hasher, inner_scope).limit(limit)
        if scope is not None:
            stmt = stmt.where(scope)
        pks = [int(row[0]) for row in conn.execute(stmt)]
        return self.repository.load(conn, pks)

    def execute(self, conn: Connection, request: SearchRequest, scope: ColumnElement[bool] | None = None,
                inner_scope: InnerScope | None = None) -> SearchResult:
        """Run a search; ``scope`` (from the access policy) limits matches and totals alike, ``inner_scope``
        the resources chains and ``_has`` look at."""
        count = request.count if request.count is not None else self.settings.default_page_size
        snapshot = request.snapshot
        if snapshot is None:
            snapshot = int(conn.execute(_SNAPSHOT).scalar_one())
            request = replace(request, snapshot=snapshot)
        total: int | None = None
        if request.total in ("accurate", "estimate") or request.summary == "count":
            count_stmt = search_compile.count_query(self.registry, request, self.hasher, inner_scope)
            if scope is not None:
                count_stmt = count_stmt.where(scope)
            total = int(conn.execute(count_stmt).scalar_one())
        if request.summary == "count" or count == 0:
            return SearchResult([], [], total, snapshot, request.offset, count, False)
        stmt = search_compile.match_query(self.registry, request, self.hasher, inner_scope)
        if scope is not None:
            stmt = stmt.where(scope)
        rows = conn.execute(stmt.limit(count + 1).offset(request.offset)).all()
        pks = [int(r[0]) for r in rows[:count]]
        has_more = len(rows) > count
        if total is None and request.total != "none" and not has_more:
            total = request.offset + len(pks)
        matches = self.repository.load(conn, pks)
        included = self._includes(conn, request, matches)
        return SearchResult(matches, included, total, snapshot, request.offset, count, has_more)

    def _includes(self, conn: Connection, request: SearchRequest, matches: list[StoredResource]) -> list[
            StoredResource]:
        if not (request.include or request.revinclude) or not matches:
            return []
        seen = {m.pk for m in matches}
        found: list[StoredResource] = []
        frontier = list(matches)
        specs: list[IncludeSpec] = [*request.include, *request.revinclude]
        for iteration in range(MAX_INCLUDE_ITERATIONS):
            active = specs if iteration == 0 else [s for s in specs if s.iterate]
            if not active or not frontier:
                break
            new_pks: list[int] = []
            for spec in active:
                build = search_includes.revinclude_query if spec.reverse else search_includes.include_query
                stmt = build(self.registry, None, [m.pk for m in frontier], [spec])
                for row in conn.execute(stmt):
                    pk = int(row[0])
                    if pk not in seen:
                        seen.add(pk)
                        new_pks.append(pk)
            frontier = self.repository.load(conn, new_pks)
            found.extend(frontier)
            if len(found) >= MAX_INCLUDED:
                break
        return found
