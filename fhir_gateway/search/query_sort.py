"""``_sort`` → ORDER BY expressions (https://hl7.org/fhir/R4/search.html#sort).

A resource may have several values for a parameter: ascending order uses the
smallest (for dates, the earliest ``low``), descending the largest (the latest
``high``); resources without a value come last either way. ``_id`` and
``_lastUpdated`` sort on the resource table. The caller appends ``resource.pk``
as the final tie-breaker so that paging is stable.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.sql.expression import FromClause

from fhir_gateway.search.query_model import SortKey
from fhir_gateway.storage.tables import INDEX_TABLES


def _sort_column(t: FromClause, key: SortKey) -> ColumnElement[Any]:
    kind = key.param.type
    if kind == "date":
        col: ColumnElement[Any] = t.c.high if key.descending else t.c.low
        return col
    if kind == "token":
        return t.c.code
    if kind == "reference":
        return func.coalesce(t.c.target_type + "/" + t.c.target_id, t.c.url)
    return t.c.value  # string (normalised), number, quantity, uri


def sort_clauses(keys: list[SortKey], res: FromClause) -> list[ColumnElement[Any]]:
    """ORDER BY expressions for ``keys`` over the resource table (or alias) ``res``."""
    clauses: list[ColumnElement[Any]] = []
    for key in keys:
        expr: ColumnElement[Any]
        if key.code == "_id":
            expr = res.c.fid
        elif key.code == "_lastUpdated":
            expr = res.c.last_updated
        else:
            t = INDEX_TABLES[key.param.type].alias()
            col = _sort_column(t, key)
            agg = func.max(col) if key.descending else func.min(col)
            expr = select(agg).where(t.c.resource_pk == res.c.pk, t.c.param == key.code).scalar_subquery()
        clauses.append(expr.desc().nulls_last() if key.descending else expr.asc().nulls_last())
    return clauses
