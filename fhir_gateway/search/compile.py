"""Typed :class:`~.query_model.SearchRequest` → SQLAlchemy Core ``SELECT`` (https://hl7.org/fhir/R4/search.html).

Shape of the generated SQL, chosen to use the ``(rtype, param, value)`` indexes
on both SQLite and PostgreSQL::

    SELECT resource.pk FROM resource
    WHERE resource.rtype = :t AND resource.deleted = false
      AND resource.pk IN (SELECT resource_pk FROM idx_token
                          WHERE rtype = :t AND param = 'code' AND (code = :c1 OR code = :c2))   -- one per criterion
      AND NOT EXISTS (SELECT 1 FROM idx_token WHERE resource_pk = resource.pk AND …)      -- :not, :missing=true
    ORDER BY (SELECT min(value) FROM idx_string WHERE resource_pk = resource.pk AND param = 'family') NULLS LAST,
             resource.pk

Chains join through ``idx_reference`` (``target_type``, ``target_id``) to the
referenced resource's own criteria; ``_has`` does the reverse. No LIMIT/OFFSET:
the repository pages (``request.offset``); ``request.snapshot`` is applied here.

Blind indexes: with a :class:`~.hashing.BlindIndexer` hasher, a criterion on a
parameter its policy blinds is matched on digests (see :mod:`.hashing`): equality
instead of ``LIKE``, and a blinded date is looked up in ``idx_token``. When a
search spans types that store a parameter differently (``_type=Patient,Organization&name=…``,
one blinded, one not), each group of types gets its own predicate, OR-ed. Features a
digest cannot answer (``:contains``, ``:text``, date ranges, ``_sort``) raise
:class:`~fhir_gateway.errors.InvalidSearch` (400).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Select, Table, and_, exists, false, func, literal, or_, select, true
from sqlalchemy.sql.expression import FromClause

from fhir_gateway.search.hashing import (
    BlindIndexer,
    BlindMode,
    DigestKind,
    IndexHasher,
    PlainIndexHasher,
    blind_indexer,
)
from fhir_gateway.search.query_model import (
    RESOURCE_COLUMN_PARAMS,
    AnyCriterion,
    ChainCriterion,
    CompositeValue,
    Criterion,
    DateValue,
    HasCriterion,
    NumberValue,
    QuantityValue,
    ReferenceValue,
    SearchRequest,
    SortKey,
    StringValue,
    TextValue,
    TokenValue,
    UriValue,
    Value,
)
from fhir_gateway.search.query_predicates import (
    Predicate,
    blind_date_predicate,
    blind_string_predicate,
    blinded,
    date_predicate,
    number_predicate,
    quantity_predicate,
    reference_predicate,
    string_predicate,
    text_predicate,
    token_predicate,
    uri_predicate,
)
from fhir_gateway.search.query_sort import sort_clauses
from fhir_gateway.search.registry import SearchRegistry
from fhir_gateway.storage.tables import INDEX_TABLES, idx_reference, idx_token, resource

__all__ = ["count_query", "match_query"]


# The access policy's SQL scope for a resource table (or alias): applied inside chains and ``_has`` so a
# search cannot test criteria against resources the requester may not see.
InnerScope = Callable[[FromClause], Predicate | None]


def match_query(registry: SearchRegistry, request: SearchRequest, hasher: IndexHasher | None = None,
                inner_scope: InnerScope | None = None) -> Select[Any]:
    """``SELECT resource.pk`` of the current, non-deleted matches, ordered by ``_sort`` then ``resource.pk``.

    No LIMIT: the repository adds ``LIMIT count OFFSET request.offset``.
    """
    compiler = _Compiler(registry, hasher or PlainIndexHasher(), inner_scope)
    compiler.check_sort(request.sort, request.types)
    return (select(resource.c.pk).where(*compiler.where(request, resource))
            .order_by(*sort_clauses(request.sort, resource), resource.c.pk))


def count_query(registry: SearchRegistry, request: SearchRequest, hasher: IndexHasher | None = None,
                inner_scope: InnerScope | None = None) -> Select[Any]:
    """``SELECT count(*)`` of the matches (for ``_total=accurate`` and ``_summary=count``)."""
    compiler = _Compiler(registry, hasher or PlainIndexHasher(), inner_scope)
    return select(func.count()).select_from(resource).where(*compiler.where(request, resource))


# Anonymous aliases, reused across statements: building an alias's column collection (``.c``) is a
# large share of compiling a search, and an alias object is immutable once built. Within one
# statement each use takes the next alias of its table (see ``_Compiler._alias``), so no two
# uses in a statement share one; the SQL rendered is the same as with fresh anonymous aliases.
_ALIAS_POOL: dict[tuple[str, int], FromClause] = {}


def _pooled_alias(table: Table, k: int) -> FromClause:
    key = (table.name, k)
    found = _ALIAS_POOL.get(key)
    if found is None:
        fresh = table.alias()
        fresh.c  # noqa: B018 - build the column collection once, here
        found = _ALIAS_POOL.setdefault(key, fresh)
    return found


def _scope(t: FromClause, types: tuple[str, ...]) -> Predicate:
    if len(types) == 1:
        return t.c.rtype == types[0]
    if types:
        return t.c.rtype.in_(types)
    return true()


def _row_param(crit: Criterion) -> str:
    """The ``param`` column value of the criterion's index rows (``subject:identifier`` for ``:identifier``)."""
    return f"{crit.param.code}:identifier" if crit.modifier == "identifier" else crit.param.code


def _table(crit: Criterion, blind: bool) -> Table:
    """The index table holding the criterion's rows: blinded dates and reference identifiers live in ``idx_token``."""
    if crit.modifier == "identifier" or (blind and crit.param.type == "date"):
        return idx_token
    return INDEX_TABLES[crit.param.type]


@dataclass(frozen=True)
class _Compiler:
    registry: SearchRegistry
    hasher: IndexHasher
    inner_scope: InnerScope | None = None
    blind: BlindIndexer | None = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "blind", blind_indexer(self.hasher))
        object.__setattr__(self, "_aliases_used", {})

    def _alias(self, table: Table) -> FromClause:
        """A fresh-in-this-statement anonymous alias of ``table`` (from the shared pool)."""
        used: dict[str, int] = self._aliases_used  # type: ignore[attr-defined]
        k = used.get(table.name, 0)
        used[table.name] = k + 1
        return _pooled_alias(table, k)

    def check_sort(self, keys: list[SortKey], types: tuple[str, ...]) -> None:
        """``_sort`` on a blinded parameter would order by digests: refuse it."""
        if self.blind is None:
            return
        for key in keys:
            if key.code not in RESOURCE_COLUMN_PARAMS and self._modes(types, key.code).keys() - {None}:
                raise blinded("_sort", key.code, "sorting on it is not available")

    def _modes(self, types: tuple[str, ...], row_param: str) -> dict[BlindMode | None, tuple[str, ...]]:
        """The searched types (``()``: all) grouped by how they store ``row_param``: plaintext, blinded, omitted."""
        assert self.blind is not None
        groups: dict[BlindMode | None, list[str]] = {}
        for rtype in types or sorted(self.registry.resource_types):
            groups.setdefault(self.blind.mode(rtype, row_param), []).append(rtype)
        return {mode: tuple(g) for mode, g in groups.items()}

    def where(self, request: SearchRequest, res: FromClause) -> list[Predicate]:
        conds: list[Predicate] = [res.c.deleted == false(), _scope(res, request.types)]
        if request.snapshot is not None:
            conds.append(res.c.pk <= request.snapshot)
        conds.extend(self.clause(c, res) for c in request.criteria)
        return conds

    def clause(self, crit: AnyCriterion, res: FromClause) -> Predicate:
        """The criterion as a predicate on the resource table (or alias) ``res``."""
        if isinstance(crit, ChainCriterion):
            return self._chain(crit, res)
        if isinstance(crit, HasCriterion):
            return self._has(crit, res)
        return self._plain(crit, res)

    # -- plain parameters -------------------------------------------------------------------------

    def _plain(self, crit: Criterion, res: FromClause) -> Predicate:
        code = crit.param.code
        if code == "_id":
            ids = [v.code for v in crit.values if isinstance(v, TokenValue) and v.code is not None]
            return res.c.fid.not_in(ids) if crit.modifier == "not" else res.c.fid.in_(ids)
        if code == "_lastUpdated":
            col = res.c.last_updated
            return or_(*(date_predicate(col, col, v) for v in crit.values if isinstance(v, DateValue)))
        if self.blind is None or crit.param.type == "composite":
            return self._indexed(crit, res, False)
        groups = self._modes(crit.resource_types, _row_param(crit))
        if "omit" in groups:
            raise blinded(crit.name, crit.param.code, "it is not indexed, so it cannot be searched")
        if len(groups) == 1:
            return self._indexed(crit, res, "blind" in groups)
        return or_(*(and_(res.c.rtype.in_(types), self._indexed(replace(crit, resource_types=types), res,
                                                                   mode == "blind"))
                     for mode, types in groups.items()))

    def _indexed(self, crit: Criterion, res: FromClause, blind: bool) -> Predicate:
        """A criterion on an index table; ``blind``: every type searched stores the parameter as digests."""
        if crit.missing is not None:
            return self._presence(crit, res, not crit.missing, blind)
        if crit.param.type == "composite":
            return self._composite(crit, res)
        row_param = _row_param(crit)
        t = self._alias(_table(crit, blind))
        base = [_scope(t, crit.resource_types), t.c.param == row_param]
        pred = or_(*(self._value(t, crit.modifier, row_param, v, crit, blind) for v in crit.values))
        if crit.modifier == "not":
            return ~exists(select(literal(1)).select_from(t).where(t.c.resource_pk == res.c.pk, *base, pred))
        return res.c.pk.in_(select(t.c.resource_pk).where(*base, pred))

    def _presence(self, crit: Criterion, res: FromClause, present: bool, blind: bool = False) -> Predicate:
        """``:missing=false`` (some value indexed) / ``:missing=true`` (none)."""
        if crit.param.type == "composite":
            table, row_param = INDEX_TABLES[crit.param.components[0].param.type], f"{crit.param.code}$0"
        else:
            table, row_param = _table(crit, blind), crit.param.code
        t = self._alias(table)
        base = [_scope(t, crit.resource_types), t.c.param == row_param]
        if present:
            return res.c.pk.in_(select(t.c.resource_pk).where(*base))
        return ~exists(select(literal(1)).select_from(t).where(t.c.resource_pk == res.c.pk, *base))

    def _composite(self, crit: Criterion, res: FromClause) -> Predicate:
        """Each component matched in its own table; components of one element share ``grp``."""
        components = crit.param.components
        branches: list[Predicate] = []
        for value in crit.values:
            assert isinstance(value, CompositeValue)
            aliases = [self._alias(INDEX_TABLES[c.param.type]) for c in components]
            first = aliases[0]
            conds: list[Predicate] = []
            for k, (a, part) in enumerate(zip(aliases, value.parts, strict=True)):
                row_param = f"{crit.param.code}${k}"
                conds += [_scope(a, crit.resource_types), a.c.param == row_param,
                          self._value(a, None, row_param, part, crit, False)]
                if k:
                    conds += [a.c.resource_pk == first.c.resource_pk, a.c.grp == first.c.grp]
            branches.append(res.c.pk.in_(select(first.c.resource_pk).where(*conds)))
        return or_(*branches)

    def _value(self, t: FromClause, modifier: str | None, row_param: str, value: Value, crit: Criterion,
               blind: bool) -> Predicate:
        if blind:
            return self._blind_value(t, modifier, row_param, value, crit)
        protect = self._protector(t, crit.resource_types, row_param)
        if isinstance(value, TokenValue):
            return token_predicate(t, value, protect)
        if isinstance(value, TextValue):
            return text_predicate(t, value)
        if isinstance(value, StringValue):
            return string_predicate(t, value, modifier, protect, crit.name)
        if isinstance(value, DateValue):
            return date_predicate(t.c.low, t.c.high, value)
        if isinstance(value, NumberValue):
            return number_predicate(t, value)
        if isinstance(value, QuantityValue):
            return quantity_predicate(t, value)
        if isinstance(value, ReferenceValue):
            return reference_predicate(t, value)
        if isinstance(value, UriValue):
            return uri_predicate(t, value, modifier)
        raise AssertionError(type(value))  # pragma: no cover

    def _blind_value(self, t: FromClause, modifier: str | None, row_param: str, value: Value, crit: Criterion,
                     ) -> Predicate:
        """A value of a blinded parameter: equality on the digest of the right kind."""

        def digests(kind: DigestKind) -> Callable[[str, Callable[[str], Predicate]], Predicate]:
            return self._digester(t, crit.resource_types, row_param, kind)

        if isinstance(value, TokenValue):
            return token_predicate(t, value, digests("token"))
        if isinstance(value, TextValue):
            raise blinded(crit.name, crit.param.code, ":text is not available, only exact codes")
        if isinstance(value, StringValue):
            return blind_string_predicate(t, value, modifier, digests("prefix"), digests("exact"), crit.name,
                                          crit.param.code)
        if isinstance(value, DateValue):
            return blind_date_predicate(t, value, digests("date"), crit.name, crit.param.code)
        raise AssertionError(type(value))  # pragma: no cover - the policy only blinds token, string and date

    def _digester(self, t: FromClause, types: tuple[str, ...], row_param: str, kind: DigestKind,
                  ) -> Callable[[str, Callable[[str], Predicate]], Predicate]:
        """Like :meth:`_protector`, with the blind indexer's digest of ``kind`` (keyed per resource type)."""
        blind = self.blind
        assert blind is not None
        scope = types or tuple(sorted(self.registry.resource_types))

        def protect(raw: str, build: Callable[[str], Predicate]) -> Predicate:
            groups: dict[str, list[str]] = {}
            for rtype in scope:
                groups.setdefault(blind.digest(rtype, row_param, kind, raw), []).append(rtype)
            if len(groups) == 1:
                return build(next(iter(groups)))
            return or_(*(and_(t.c.rtype.in_(g), build(stored)) for stored, g in groups.items()))

        return protect

    def _protector(self, t: FromClause, types: tuple[str, ...], row_param: str,
                   ) -> Callable[[str, Callable[[str], Predicate]], Predicate]:
        """Build predicates on the stored (possibly blind-indexed) form of a value.

        The hasher may key by resource type; when a search spans types that
        store the value differently, each form is matched only within its types.
        """
        hasher = self.hasher
        if isinstance(hasher, PlainIndexHasher) or self.blind is not None:  # a blind indexer: not blinded here
            return lambda raw, build: build(raw)
        scope = types or tuple(sorted(self.registry.resource_types))

        def protect(raw: str, build: Callable[[str], Predicate]) -> Predicate:
            groups: dict[str, list[str]] = {}
            for rtype in scope:
                groups.setdefault(hasher.protect(rtype, row_param, raw), []).append(rtype)
            if len(groups) == 1:
                return build(next(iter(groups)))
            return or_(*(and_(t.c.rtype.in_(g), build(stored)) for stored, g in groups.items()))

        return protect

    # -- chaining ---------------------------------------------------------------------------------

    def _chain(self, crit: ChainCriterion, res: FromClause) -> Predicate:
        """``ref.x=v``: a reference row whose target (type, id) is a live resource matching ``x=v``."""
        ref = self._alias(idx_reference)
        branches: list[Predicate] = []
        for target_type, inner in crit.links:
            tgt = self._alias(resource)
            fids = select(tgt.c.fid).where(tgt.c.rtype == target_type, tgt.c.deleted == false(),
                                           self.clause(inner, tgt), *self._visible(tgt))
            branches.append(and_(ref.c.target_type == target_type, ref.c.target_id.in_(fids)))
        sub = select(ref.c.resource_pk).where(_scope(ref, crit.resource_types), ref.c.param == crit.param.code,
                                              or_(*branches))
        return res.c.pk.in_(sub)

    def _visible(self, alias: FromClause) -> list[Predicate]:
        """The requester's access scope over a chained or ``_has`` resource alias (nothing when unscoped)."""
        cond = self.inner_scope(alias) if self.inner_scope is not None else None
        return [cond] if cond is not None else []

    def _has(self, crit: HasCriterion, res: FromClause) -> Predicate:
        """``_has:S:ref:x=v``: this resource's id is the target of ``ref`` in a live ``S`` matching ``x=v``."""
        ref = self._alias(idx_reference)
        src = self._alias(resource)
        sources = select(src.c.pk).where(src.c.rtype == crit.source_type, src.c.deleted == false(),
                                         self.clause(crit.inner, src), *self._visible(src))
        sub = select(ref.c.target_id).where(ref.c.rtype == crit.source_type, ref.c.param == crit.param.code,
                                            ref.c.target_type == crit.resource_types[0],
                                            ref.c.resource_pk.in_(sources))
        return res.c.fid.in_(sub)
