"""Writes a resource's index rows to the ``idx_*`` tables, through the index-value hasher seam.

Identifying values (token codes, normalised strings) pass through
``IndexHasher.protect`` so the security issue can store blind indexes (keyed
HMACs) instead of plaintext; the query compiler applies the same hasher.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from typing import Any, Protocol

from sqlalchemy import Connection, delete, insert

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
        self._protectors: dict[str, Callable[[str, dict[str, Any]], None]] = {
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
