"""``_include`` / ``_revinclude`` → SELECTs of the resource pks to add to a search page.

https://hl7.org/fhir/R4/search.html#include. Both follow ``idx_reference``
rows (``target_type``, ``target_id``) and return only current, non-deleted
resources, each pk once, in pk order. The results may contain pks already on the
page; the caller de-duplicates before building the Bundle (``search.mode``
``include``).

``:iterate`` is the caller's loop, bounded by a depth and a result budget::

    seen = set(page_pks)
    new = run(include_query(reg, req.resource_type, page_pks, req.include))
    new |= run(revinclude_query(reg, req.resource_type, page_pks, req.revinclude))
    new -= seen
    while new and depth < MAX_DEPTH:
        seen |= new
        it_inc = [s for s in req.include if s.iterate]
        it_rev = [s for s in req.revinclude if s.iterate]
        found = run(include_query(reg, None, list(new), it_inc)) | run(revinclude_query(reg, None, list(new), it_rev))
        new = found - seen

``rtype`` is the type of ``page_pks`` when they are all of one type (it lets
specs for other types be skipped), or None for a mixed set such as an
``:iterate`` round.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select, and_, false, or_, select, true

from fhir_gateway.search.query_model import IncludeSpec
from fhir_gateway.search.query_predicates import Predicate
from fhir_gateway.search.registry import SearchRegistry
from fhir_gateway.storage.tables import idx_reference, resource

__all__ = ["include_query", "revinclude_query"]


def _param_clause(ref_param: Any, spec: IncludeSpec) -> Predicate:
    if spec.param is not None:
        return ref_param == spec.param  # type: ignore[no-any-return]
    return ~ref_param.contains("$")  # type: ignore[no-any-return]  # '*': any reference but composite parts


def include_query(registry: SearchRegistry, rtype: str | None, page_pks: Sequence[int],
                  includes: Iterable[IncludeSpec]) -> Select[Any]:
    """Pks of the resources that the ``page_pks`` resources reference through ``includes`` (``_include``)."""
    ref = idx_reference.alias()
    tgt = resource.alias()
    branches: list[Predicate] = []
    for spec in includes:
        if spec.reverse or (rtype is not None and spec.source_type not in (None, rtype)):
            continue
        conds = [_param_clause(ref.c.param, spec)]
        if spec.source_type is not None:
            conds.append(ref.c.rtype == spec.source_type)
        if spec.target_type is not None:
            conds.append(ref.c.target_type == spec.target_type)
        branches.append(and_(*conds))
    stmt = (select(tgt.c.pk).distinct().select_from(ref)
            .join(tgt, and_(tgt.c.rtype == ref.c.target_type, tgt.c.fid == ref.c.target_id))
            .where(ref.c.resource_pk.in_(list(page_pks)), tgt.c.deleted == false(),
                   or_(*branches) if branches else false())
            .order_by(tgt.c.pk))
    return stmt


def revinclude_query(registry: SearchRegistry, rtype: str | None, page_pks: Sequence[int],
                     revincludes: Iterable[IncludeSpec]) -> Select[Any]:
    """Pks of the resources that reference the ``page_pks`` resources through ``revincludes`` (``_revinclude``)."""
    ref = idx_reference.alias()
    tgt = resource.alias()
    src = resource.alias()
    branches: list[Predicate] = []
    for spec in revincludes:
        if not spec.reverse or (rtype is not None and spec.target_type not in (None, rtype)):
            continue
        conds = [_param_clause(ref.c.param, spec)]
        if spec.source_type is not None:
            conds.append(ref.c.rtype == spec.source_type)
        conds.append(tgt.c.rtype == spec.target_type if spec.target_type is not None else true())
        branches.append(and_(*conds))
    stmt = (select(src.c.pk).distinct().select_from(tgt)
            .join(ref, and_(ref.c.target_type == tgt.c.rtype, ref.c.target_id == tgt.c.fid))
            .join(src, src.c.pk == ref.c.resource_pk)
            .where(tgt.c.pk.in_(list(page_pks)), src.c.deleted == false(),
                   or_(*branches) if branches else false())
            .order_by(src.c.pk))
    return stmt
