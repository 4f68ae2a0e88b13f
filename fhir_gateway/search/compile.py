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
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, exists, false, func, literal, or_, select, true
from sqlalchemy.sql.expression import FromClause

from fhir_gateway.search.hashing import IndexHasher, PlainIndexHasher
from fhir_gateway.search.query_model import (
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
    StringValue,
    TextValue,
    TokenValue,
    UriValue,
    Value,
)
from fhir_gateway.search.query_predicates import (
    Predicate,
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


def match_query(registry: SearchRegistry, request: SearchRequest, hasher: IndexHasher | None = None) -> Select[Any]:
    """``SELECT resource.pk`` of the current, non-deleted matches, ordered by ``_sort`` then ``resource.pk``.

    No LIMIT: the repository adds ``LIMIT count OFFSET request.offset``.
    """
    compiler = _Compiler(registry, hasher or PlainIndexHasher())
    return (select(resource.c.pk).where(*compiler.where(request, resource))
            .order_by(*sort_clauses(request.sort, resource), resource.c.pk))


def count_query(registry: SearchRegistry, request: SearchRequest, hasher: IndexHasher | None = None) -> Select[Any]:
    """``SELECT count(*)`` of the matches (for ``_total=accurate`` and ``_summary=count``)."""
    compiler = _Compiler(registry, hasher or PlainIndexHasher())
    return select(func.count()).select_from(resource).where(*compiler.where(request, resource))


def _scope(t: FromClause, types: tuple[str, ...]) -> Predicate:
    if len(types) == 1:
        return t.c.rtype == types[0]
    if types:
        return t.c.rtype.in_(types)
    return true()


@dataclass(frozen=True)
class _Compiler:
    registry: SearchRegistry
    hasher: IndexHasher

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
        if crit.missing is not None:
            return self._presence(crit, res, not crit.missing)
        if crit.param.type == "composite":
            return self._composite(crit, res)
        if crit.modifier == "identifier":
            table, row_param = idx_token, f"{code}:identifier"
        else:
            table, row_param = INDEX_TABLES[crit.param.type], code
        t = table.alias()
        base = [_scope(t, crit.resource_types), t.c.param == row_param]
        pred = or_(*(self._value(t, crit.modifier, row_param, v, crit) for v in crit.values))
        if crit.modifier == "not":
            return ~exists(select(literal(1)).select_from(t).where(t.c.resource_pk == res.c.pk, *base, pred))
        return res.c.pk.in_(select(t.c.resource_pk).where(*base, pred))

    def _presence(self, crit: Criterion, res: FromClause, present: bool) -> Predicate:
        """``:missing=false`` (some value indexed) / ``:missing=true`` (none)."""
        if crit.param.type == "composite":
            table, row_param = INDEX_TABLES[crit.param.components[0].param.type], f"{crit.param.code}$0"
        else:
            table, row_param = INDEX_TABLES[crit.param.type], crit.param.code
        t = table.alias()
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
            aliases = [INDEX_TABLES[c.param.type].alias() for c in components]
            first = aliases[0]
            conds: list[Predicate] = []
            for k, (a, part) in enumerate(zip(aliases, value.parts, strict=True)):
                row_param = f"{crit.param.code}${k}"
                conds += [_scope(a, crit.resource_types), a.c.param == row_param,
                          self._value(a, None, row_param, part, crit)]
                if k:
                    conds += [a.c.resource_pk == first.c.resource_pk, a.c.grp == first.c.grp]
            branches.append(res.c.pk.in_(select(first.c.resource_pk).where(*conds)))
        return or_(*branches)

    def _value(self, t: FromClause, modifier: str | None, row_param: str, value: Value, crit: Criterion,
               ) -> Predicate:
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

    def _protector(self, t: FromClause, types: tuple[str, ...], row_param: str,
                   ) -> Callable[[str, Callable[[str], Predicate]], Predicate]:
        """Build predicates on the stored (possibly blind-indexed) form of a value.

        The hasher may key by resource type; when a search spans types that
        store the value differently, each form is matched only within its types.
        """
        hasher = self.hasher
        if isinstance(hasher, PlainIndexHasher):
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
        ref = idx_reference.alias()
        branches: list[Predicate] = []
        for target_type, inner in crit.links:
            tgt = resource.alias()
            fids = select(tgt.c.fid).where(tgt.c.rtype == target_type, tgt.c.deleted == false(),
                                           self.clause(inner, tgt))
            branches.append(and_(ref.c.target_type == target_type, ref.c.target_id.in_(fids)))
        sub = select(ref.c.resource_pk).where(_scope(ref, crit.resource_types), ref.c.param == crit.param.code,
                                              or_(*branches))
        return res.c.pk.in_(sub)

    def _has(self, crit: HasCriterion, res: FromClause) -> Predicate:
        """``_has:S:ref:x=v``: this resource's id is the target of ``ref`` in a live ``S`` matching ``x=v``."""
        ref = idx_reference.alias()
        src = resource.alias()
        sources = select(src.c.pk).where(src.c.rtype == crit.source_type, src.c.deleted == false(),
                                         self.clause(crit.inner, src))
        sub = select(ref.c.target_id).where(ref.c.rtype == crit.source_type, ref.c.param == crit.param.code,
                                            ref.c.target_type == crit.resource_types[0],
                                            ref.c.resource_pk.in_(sources))
        return res.c.fid.in_(sub)
