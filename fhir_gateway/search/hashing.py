"""The blind-index seam: how identifying search values are protected before they reach an index table.

Telehub stores values that identify a person (identifier, name, telecom, …) as
keyed HMACs rather than plaintext (see ARCHITECTURE.md, "Data"). Extraction
(write time) and query compilation (read time) must transform a value the same
way, so both call one :class:`IndexHasher`:

* ``rtype`` is the resource type of the indexed resource;
* ``param`` is exactly what goes in the index row's ``param`` column
  (``identifier``, ``name``, ``subject:identifier``, ``code-value-quantity$0``);
* ``value`` is what would otherwise be stored in the column: a token ``code``,
  a *normalised* string ``value`` (:func:`fhir_gateway.search.values.normalize_string`),
  or a string's ``exact`` form.

A hasher that changes a string value (``protect(v) != v``) switches the query
compiler from ``LIKE 'v%'`` to equality, so for such parameters the extractor
must write one row per prefix of the normalised value (startsWith search) and
``:contains`` is refused. Token ``system`` and ``text`` are never protected.

:class:`PlainIndexHasher` is the identity, used until the crypto package
supplies an HMAC implementation.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class IndexHasher(Protocol):
    """Transforms an indexed value; must be deterministic for a given (rtype, param, value)."""

    def protect(self, rtype: str, param: str, value: str) -> str:
        """Return the form of ``value`` that is stored in (and searched against) the index."""
        ...


class PlainIndexHasher:
    """The identity hasher: values are stored and searched as plaintext."""

    def protect(self, rtype: str, param: str, value: str) -> str:
        return value


PLAIN = PlainIndexHasher()
