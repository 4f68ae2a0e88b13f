"""The blind-index seam: how identifying search values are protected before they reach an index table.

Telehub stores values that identify a person (identifier, name, telecom, …) as
keyed HMACs rather than plaintext (see ``docs/blind-indexes.md``). Extraction
(write time) and query compilation (read time) must transform a value the same
way, so both go through one hasher. There are two seams:

:class:`IndexHasher` — the minimal one, ``protect(rtype, param, value) -> str``:

* ``rtype`` is the resource type of the indexed resource;
* ``param`` is exactly what goes in the index row's ``param`` column
  (``identifier``, ``name``, ``subject:identifier``, ``code-value-quantity$0``);
* ``value`` is what would otherwise be stored in the column: a token ``code``,
  a *normalised* string ``value`` (:func:`fhir_gateway.search.values.normalize_string`),
  or a string's ``exact`` form.

  A hasher that changes a string value (``protect(v) != v``) switches the query
  compiler from ``LIKE 'v%'`` to equality, so for such parameters whoever writes
  the rows must write one row per prefix of the normalised value and ``:contains``
  is refused. Token ``system`` and ``text`` are not protected on this seam.

:class:`BlindIndexer` — the full blind-index seam (an ``IndexHasher`` plus
:meth:`~BlindIndexer.mode` and :meth:`~BlindIndexer.digest`). When the hasher
implements it, the index writer and the query compiler do the whole job
themselves, per parameter the hasher's policy marks ``"blind"``:

* token: ``code`` → ``digest(…, "token", code)``; ``text`` is not stored
  (``:text`` is refused);
* string: one row per prefix of the normalised value (cut to
  :data:`STRING_VALUE_MAX`), ``value = digest(…, "prefix", prefix)``; the row of
  the full value also carries ``exact = digest(…, "exact", as written)``, the
  shorter prefixes ``exact = ""``. Search ``name=smi`` is an equality on
  ``digest("prefix", "smi")``; ``:exact`` an equality on the ``exact`` column;
  ``:contains`` and ``_sort`` are refused;
* date: no ``idx_date`` range rows. The value's calendar *units* — the year,
  month and day that wholly contain its ``[low, high]`` range
  (:func:`calendar_keys`) — go to ``idx_token`` under the same ``param`` as
  ``digest(…, "date", "1974")``, ``"1974-12"``, ``"1974-12-25"`` (a value in no
  single year gets a row with ``code`` NULL, so ``:missing`` stays right).
  ``birthdate=1974-12`` (``eq``) then matches exactly what the range index would
  (row range inside the month); other prefixes, time precision and ``_sort`` are
  refused;

and ``"omit"`` means the parameter's rows are not stored at all (for parameters
this server cannot search anyway, such as ``phonetic``). Composite components
(``P$k``) are never blinded.

:class:`PlainIndexHasher` is the identity (no parameter is blinded).
"""
from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol, runtime_checkable

BlindMode = Literal["blind", "omit"]
DigestKind = Literal["token", "prefix", "exact", "date"]

STRING_VALUE_MAX = 255
"""Normalised string values (and so blind-index prefixes) are cut to this many characters (``idx_string.value``)."""


@runtime_checkable
class IndexHasher(Protocol):
    """Transforms an indexed value; must be deterministic for a given (rtype, param, value)."""

    def protect(self, rtype: str, param: str, value: str) -> str:
        """Return the form of ``value`` that is stored in (and searched against) the index."""
        ...


@runtime_checkable
class BlindIndexer(Protocol):
    """An :class:`IndexHasher` that also says which parameters are blinded and digests values by kind."""

    def protect(self, rtype: str, param: str, value: str) -> str:
        """For a blinded parameter ``digest(rtype, param, "token", value)``, otherwise ``value``."""
        ...

    def mode(self, rtype: str, param: str) -> BlindMode | None:
        """``"blind"``, ``"omit"`` or None (stored as plaintext) for an index row's ``param`` of ``rtype``."""
        ...

    def digest(self, rtype: str, param: str, kind: DigestKind, value: str) -> str:
        """The stored form of ``value``: a keyed digest, domain-separated by (rtype, param, kind)."""
        ...

    def prefix_digests(self, rtype: str, param: str, normalized: str) -> list[str]:
        """``digest(rtype, param, "prefix", p)`` for each ``p`` in :func:`string_prefixes` of ``normalized``."""
        ...


class PlainIndexHasher:
    """The identity hasher: values are stored and searched as plaintext."""

    def protect(self, rtype: str, param: str, value: str) -> str:
        return value


PLAIN = PlainIndexHasher()


def blind_indexer(hasher: object) -> BlindIndexer | None:
    """``hasher`` as a :class:`BlindIndexer`, or None if it only has the ``protect`` seam."""
    return hasher if isinstance(hasher, BlindIndexer) else None


# --------------------------------------------------------------------------- keyless helpers


def string_prefixes(normalized: str) -> list[str]:
    """Every non-empty prefix of a normalised string value (cut to :data:`STRING_VALUE_MAX`), shortest first."""
    value = normalized[:STRING_VALUE_MAX]
    return [value[:n] for n in range(1, len(value) + 1)]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _utc(micros: int) -> datetime | None:
    try:
        return _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        return None


def calendar_keys(low: int, high: int) -> list[str]:
    """The calendar units (UTC) that wholly contain ``[low, high]``: ``["1974", "1974-12", "1974-12-25"]``.

    A value in a single day has all three, one spanning days of one month the first
    two, and so on; a value in no single year has none. Search ``eq`` on a unit
    matches exactly the rows whose range lies inside it, as the range index does.
    """
    start, end = _utc(low), _utc(high)
    if start is None or end is None or start.year != end.year:
        return []
    keys = [f"{start.year:04d}"]
    if start.month == end.month:
        keys.append(f"{start.year:04d}-{start.month:02d}")
        if start.day == end.day:
            keys.append(f"{start.year:04d}-{start.month:02d}-{start.day:02d}")
    return keys


def calendar_key(low: int, high: int) -> str | None:
    """The calendar unit a search range *is* (``1974``, ``1974-12``, ``1974-12-25``), None if it is none of them.

    ``parse_date`` turns ``1974-12`` into exactly the month's range; a search with
    time precision (or a widened ``ap`` range) is no unit.
    """
    start, end = _utc(low), _utc(high + 1)
    if start is None or end is None or start.time() != datetime.min.time() or end.time() != datetime.min.time():
        return None
    if start.month == 1 and start.day == 1 and start.year < 9999 and end == start.replace(year=start.year + 1):
        return f"{start.year:04d}"
    if start.day == 1:
        days = calendar.monthrange(start.year, start.month)[1]
        if end == start + timedelta(days=days):
            return f"{start.year:04d}-{start.month:02d}"
    if end == start + timedelta(days=1):
        return f"{start.year:04d}-{start.month:02d}-{start.day:02d}"
    return None


__all__ = [
    "PLAIN", "STRING_VALUE_MAX", "BlindIndexer", "BlindMode", "DigestKind", "IndexHasher",
    "PlainIndexHasher", "blind_indexer", "calendar_key", "calendar_keys", "string_prefixes",
]
