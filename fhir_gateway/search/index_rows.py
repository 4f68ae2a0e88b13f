"""The index rows a resource contributes to search, one dataclass per search-parameter type.

Produced by :mod:`fhir_gateway.search.extract` at write time, written by the
storage layer to the matching ``idx_*`` table in the same transaction as the
resource body. ``param`` is the search parameter code; for a composite
parameter ``P`` its k-th component is stored as ``P$k`` with a shared ``grp``
number per matched element, so components can be matched together.
Reference identifiers (``:identifier`` modifier) go to the token table as ``code:identifier``.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class TokenRow:
    param: str
    system: str | None
    code: str | None
    text: str | None = None  # normalised display/text, for :text
    grp: int | None = None


@dataclass(slots=True)
class StringRow:
    param: str
    value: str  # normalised (values.normalize_string)
    exact: str  # as written, for :exact
    grp: int | None = None


@dataclass(slots=True)
class DateRow:
    param: str
    low: int  # microseconds since epoch, UTC, inclusive
    high: int
    grp: int | None = None


@dataclass(slots=True)
class ReferenceRow:
    param: str
    target_type: str | None  # "Patient" for "Patient/123" or an absolute URL ending in it
    target_id: str | None
    url: str | None = None  # absolute or canonical URL (without |version)
    version: str | None = None  # canonical version or _history version
    grp: int | None = None


@dataclass(slots=True)
class QuantityRow:
    param: str
    value: float | None
    low: float | None
    high: float | None
    system: str | None = None
    code: str | None = None
    unit: str | None = None
    grp: int | None = None


@dataclass(slots=True)
class NumberRow:
    param: str
    value: float
    low: float
    high: float
    grp: int | None = None


@dataclass(slots=True)
class UriRow:
    param: str
    value: str
    grp: int | None = None


@dataclass(slots=True)
class IndexRows:
    """Everything one resource version contributes to the index tables."""

    token: list[TokenRow] = field(default_factory=list)
    string: list[StringRow] = field(default_factory=list)
    date: list[DateRow] = field(default_factory=list)
    reference: list[ReferenceRow] = field(default_factory=list)
    quantity: list[QuantityRow] = field(default_factory=list)
    number: list[NumberRow] = field(default_factory=list)
    uri: list[UriRow] = field(default_factory=list)
