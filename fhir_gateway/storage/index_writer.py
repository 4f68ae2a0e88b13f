"""Writes a resource's index rows to the ``idx_*`` tables, through the index-value hasher seam.

Identifying values (token codes, normalised strings) pass through
``IndexHasher.protect`` so the security issue can store blind indexes (keyed
HMACs) instead of plaintext; the query compiler applies the same hasher.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Protocol

from sqlalchemy import Connection, delete, insert

from fhir_gateway.search.index_rows import IndexRows
from fhir_gateway.storage.tables import INDEX_TABLES


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

    def rows_for(self, pk: int, rtype: str, rows: IndexRows) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for kind in INDEX_TABLES:
            items = getattr(rows, kind)
            if not items:
                continue
            protect = self._protectors.get(kind)
            dicts = []
            for item in items:
                d = asdict(item)
                d["resource_pk"] = pk
                d["rtype"] = rtype
                if protect is not None:
                    protect(rtype, d)
                dicts.append(d)
            out[kind] = dicts
        return out

    def write(self, conn: Connection, pk: int, rtype: str, body: dict[str, Any], rows: IndexRows | None) -> None:
        if rows is None:
            rows = self.extractor.extract(body)
        for kind, dicts in self.rows_for(pk, rtype, rows).items():
            conn.execute(insert(INDEX_TABLES[kind]), dicts)

    def clear(self, conn: Connection, pk: int) -> None:
        for table in INDEX_TABLES.values():
            conn.execute(delete(table).where(table.c.resource_pk == pk))
