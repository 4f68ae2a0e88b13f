"""``column starts with prefix``, compiled so that the ``(rtype, param, value)`` index can serve it.

* SQLite: ``col >= :p AND col < :p_next`` — exact under SQLite's default BINARY
  collation (UTF-8 byte order is code-point order) and a plain index range,
  whereas SQLite's ``LIKE`` is case-insensitive and never uses a BINARY index.
* PostgreSQL and others: ``col LIKE :pattern ESCAPE '/'`` with the pattern bound
  as one parameter, which PostgreSQL turns into an index range when the index is
  in the C collation or uses ``varchar_pattern_ops``.

Both bounds are bound parameters, so statement caching is unaffected.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, ColumnElement, and_, bindparam, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.visitors import InternalTraversal

_MAX_CHAR = "\U0010ffff"


def escape_like(text: str, escape: str = "/") -> str:
    return text.replace(escape, escape * 2).replace("%", escape + "%").replace("_", escape + "_")


def _successor(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix`` (None: no such bound)."""
    stripped = prefix.rstrip(_MAX_CHAR)
    if not stripped:
        return None
    last = ord(stripped[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:  # skip the surrogate block, which UTF-8 cannot hold
        last = 0xE000
    return stripped[:-1] + chr(last)


class StartsWith(ColumnElement[bool]):
    """Boolean SQL expression: ``column`` starts with ``prefix`` (case-sensitive, no wildcards)."""

    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("low", InternalTraversal.dp_clauseelement),
        ("high", InternalTraversal.dp_clauseelement),
        ("pattern", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[Any], prefix: str) -> None:
        self.column = column
        successor = _successor(prefix)
        self.low: BindParameter[str] = bindparam(None, prefix, unique=True, type_=column.type)
        self.high: BindParameter[str] | None = (
            bindparam(None, successor, unique=True, type_=column.type) if successor is not None else None)
        self.pattern: BindParameter[str] = bindparam(None, escape_like(prefix) + "%", unique=True,
                                                     type_=column.type)


@compiles(StartsWith)
def _compile_like(element: StartsWith, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column.like(element.pattern, escape="/"), **kw)


@compiles(StartsWith, "sqlite")
def _compile_range(element: StartsWith, compiler: SQLCompiler, **kw: Any) -> str:
    upper = element.column < element.high if element.high is not None else true()
    return "(" + compiler.process(and_(element.column >= element.low, upper), **kw) + ")"
