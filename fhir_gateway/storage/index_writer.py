"""Writes a resource's index rows to the ``idx_*`` tables, through the index-value hasher seam.

With a plain ``IndexHasher`` (the identity, or a ``protect``-only hasher) token
codes and string values/exact forms pass through ``protect`` as they are. With a
:class:`~fhir_gateway.search.hashing.BlindIndexer` the rows of every blinded
parameter are rewritten before they are written (see :mod:`fhir_gateway.search.hashing`):
token codes become digests and lose their ``text``; a string becomes one digest row
per normalised prefix, the full one carrying the digest of the exact form; a date
becomes token rows holding digests of the year, month and day it lies in. Nothing of
a blinded value reaches a table in plaintext. The query compiler applies the same hasher.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from typing import Any, Protocol

from sqlalchemy import Connection, delete, insert

from fhir_gateway.search.hashing import BlindIndexer, blind_indexer, calendar_keys
from fhir_gateway.search.index_rows import (
    DateRow,
    IndexRows,
    NumberRow,
    QuantityRow,
    ReferenceRow,
    StringRow,
    TokenRow,
    UriRow,
)
from fhir_gateway.storage.tables import INDEX_TABLES

_ROW_FIELDS: dict[str, tuple[str, ...]] = {
    kind: tuple(f.name for f in fields(cls)) for kind, cls in (
        ("token", TokenRow), ("string", StringRow), ("date", DateRow), ("reference", ReferenceRow),
        ("quantity", QuantityRow), ("number", NumberRow), ("uri", UriRow))
}


class Extractor(Protocol):
    def extract(self, resource: dict[str, Any]) -> IndexRows: ...


class Hasher(Protocol):
    def protect(self, rtype: str, param: str, value: str) -> str: ...


class IndexWriter:
    def __init__(self, extractor: Extractor, hasher: Hasher) -> None:
        self.extractor = extractor
        self.hasher = hasher
        self.blind: BlindIndexer | None = blind_indexer(hasher)
        self._protectors: dict[str, Callable[[str, dict[str, Any]], None]] = {} if self.blind else {
            "token": self._protect_token,
            "string": self._protect_string,
        }

    def _protect_token(self, rtype: str, row: dict[str, Any]) -> None:
        if row["code"] is not None:
            row["code"] = self.hasher.protect(rtype, row["param"], row["code"])

    def _protect_string(self, rtype: str, row: dict[str, Any]) -> None:
        row["value"] = self.hasher.protect(rtype, row["param"], row["value"])
        row["exact"] = self.hasher.protect(rtype, row["param"], row["exact"])

    def rows_for(self, pk: int, rtype: str, rows: IndexRows,
                 out: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, list[dict[str, Any]]]:
        """Table rows (dicts) for one resource's index rows, appended to ``out`` if given."""
        out = {} if out is None else out
        if self.blind is not None:
            rows = blind_rows(self.blind, rtype, rows)
        for kind, names in _ROW_FIELDS.items():
            items = getattr(rows, kind)
            if not items:
                continue
            protect = self._protectors.get(kind)
            dicts = out.setdefault(kind, [])
            for item in items:
                d = {name: getattr(item, name) for name in names}
                d["resource_pk"] = pk
                d["rtype"] = rtype
                if protect is not None:
                    protect(rtype, d)
                dicts.append(d)
        return out

    def write(self, conn: Connection, pk: int, rtype: str, body: dict[str, Any], rows: IndexRows | None) -> None:
        self.write_many(conn, [(pk, rtype, body, rows)])

    def write_many(self, conn: Connection,
                   items: Iterable[tuple[int, str, dict[str, Any], IndexRows | None]]) -> None:
        """Index several resources with one multi-row INSERT per index table."""
        out: dict[str, list[dict[str, Any]]] = {}
        for pk, rtype, body, rows in items:
            self.rows_for(pk, rtype, rows if rows is not None else self.extractor.extract(body), out)
        for kind, dicts in out.items():
            if dicts:
                conn.execute(insert(INDEX_TABLES[kind]), dicts)

    def clear(self, conn: Connection, pk: int) -> None:
        self.clear_many(conn, [pk])

    def clear_many(self, conn: Connection, pks: Sequence[int]) -> None:
        if not pks:
            return
        for table in INDEX_TABLES.values():
            conn.execute(delete(table).where(table.c.resource_pk.in_(list(pks))))


def blind_rows(blind: BlindIndexer, rtype: str, rows: IndexRows) -> IndexRows:
    """``rows`` with every value of a parameter ``blind`` blinds replaced by digests (and omitted ones dropped).

    Rows of parameters that are not blinded keep their values; a resource with no
    blinded row (most clinical resources) is returned as it is, without copying.
    """
    mode = blind.mode
    if not any(mode(rtype, r.param) for kind in (rows.token, rows.string, rows.date) for r in kind):
        return rows
    digest = blind.digest
    token: dict[tuple[str, str | None, str | None, str | None, int | None], None] = {}
    for t in rows.token:
        m = mode(rtype, t.param)
        if m is None:
            token[(t.param, t.system, t.code, t.text, t.grp)] = None
        elif m == "blind":
            code = digest(rtype, t.param, "token", t.code) if t.code is not None else None
            token[(t.param, t.system, code, None, t.grp)] = None
    string: dict[tuple[str, str, str, int | None], None] = {}
    for s in rows.string:
        m = mode(rtype, s.param)
        if m is None:
            string[(s.param, s.value, s.exact, s.grp)] = None
        elif m == "blind":
            prefixes = blind.prefix_digests(rtype, s.param, s.value)
            if not prefixes:
                continue
            for prefix in prefixes[:-1]:
                string[(s.param, prefix, "", s.grp)] = None
            string[(s.param, prefixes[-1], digest(rtype, s.param, "exact", s.exact), s.grp)] = None
    date: list[DateRow] = []
    for d in rows.date:
        m = mode(rtype, d.param)
        if m is None:
            date.append(d)
        elif m == "blind":
            keys = calendar_keys(d.low, d.high)
            for key in keys:
                token[(d.param, None, digest(rtype, d.param, "date", key), None, d.grp)] = None
            if not keys:  # in no single year: not searchable by value, but present for :missing
                token[(d.param, None, None, None, d.grp)] = None
    return IndexRows(
        token=[TokenRow(*k) for k in token], string=[StringRow(*k) for k in string], date=date,
        reference=rows.reference, quantity=rows.quantity, number=rows.number, uri=rows.uri)
