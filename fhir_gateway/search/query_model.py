"""The typed search request: produced by :mod:`.parse`, consumed by :mod:`.compile` and :mod:`.includes`.

https://hl7.org/fhir/R4/search.html. A request's ``criteria`` are AND-ed (one
entry per occurrence of a parameter in the query string); each criterion's
``values`` are OR-ed (the comma-separated list). Values are already parsed and
normalised, but not yet protected by an :class:`~.hashing.IndexHasher` (that
happens when compiling, so parsing needs no keys).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from fhir_gateway.search.registry import SearchParam

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
Prefix = Literal["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"]
Total = Literal["none", "estimate", "accurate"]
Summary = Literal["true", "text", "data", "count", "false"]

# Parameters that live on the ``resource`` table rather than in an index table.
RESOURCE_COLUMN_PARAMS = frozenset({"_id", "_lastUpdated"})


@dataclass(frozen=True, slots=True)
class TokenValue:
    """``code``, ``system|code``, ``|code`` (``no_system``) or ``system|`` (``code`` is None)."""

    system: str | None = None
    code: str | None = None
    no_system: bool = False


@dataclass(frozen=True, slots=True)
class TextValue:
    """A token ``:text`` search: normalised, matched as startsWith against the token's ``text``."""

    text: str


@dataclass(frozen=True, slots=True)
class StringValue:
    value: str  # normalised (values.normalize_string)
    exact: str  # unescaped, as written, for :exact


@dataclass(frozen=True, slots=True)
class DateValue:
    """A date search value as an inclusive µs range; for ``ap`` the range is already widened."""

    prefix: Prefix
    low: int
    high: int


@dataclass(frozen=True, slots=True)
class NumberValue:
    """A number with the half-open range ``[low, high)`` its significant figures imply."""

    prefix: Prefix
    value: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class QuantityValue:
    number: NumberValue
    system: str | None = None
    code: str | None = None  # matches the row's code, or its unit when no system is given


@dataclass(frozen=True, slots=True)
class ReferenceValue:
    """``Type/id`` (``target_type`` None: any type), or an absolute/canonical ``url`` [+ ``version``]."""

    target_type: str | None = None
    target_id: str | None = None
    url: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class UriValue:
    value: str


@dataclass(frozen=True, slots=True)
class CompositeValue:
    """One value per component, in the order of ``SearchParam.components``."""

    parts: tuple[Value, ...]


Value: TypeAlias = (
    TokenValue | TextValue | StringValue | DateValue | NumberValue | QuantityValue | ReferenceValue | UriValue
    | CompositeValue
)


@dataclass(frozen=True, slots=True)
class Criterion:
    """One occurrence of a plain parameter: ``name[:modifier]=v1,v2`` (values OR-ed).

    ``resource_types`` are the types searched (``()`` = every type, for a
    system-wide search). ``missing`` is set instead of ``values`` for ``:missing``.
    """

    name: str
    resource_types: tuple[str, ...]
    param: SearchParam
    modifier: str | None
    values: tuple[Value, ...]
    missing: bool | None = None


@dataclass(frozen=True, slots=True)
class ChainCriterion:
    """``ref[:Type].rest=value``: the reference points at a resource matching ``rest``.

    ``links`` holds one (target type, criterion on that type) per candidate target, OR-ed.
    """

    name: str
    resource_types: tuple[str, ...]
    param: SearchParam
    links: tuple[tuple[str, AnyCriterion], ...]


@dataclass(frozen=True, slots=True)
class HasCriterion:
    """``_has:Source:ref:rest=value``: some ``Source`` whose ``ref`` points here matches ``rest``."""

    name: str
    resource_types: tuple[str, ...]
    source_type: str
    param: SearchParam
    inner: AnyCriterion


AnyCriterion: TypeAlias = Criterion | ChainCriterion | HasCriterion


@dataclass(frozen=True, slots=True)
class SortKey:
    """One ``_sort`` key; ``_id`` and ``_lastUpdated`` sort on resource columns."""

    code: str
    param: SearchParam
    descending: bool = False


@dataclass(frozen=True, slots=True)
class IncludeSpec:
    """``_include``/``_revinclude`` = ``Source:param[:Target]``; None stands for the ``*`` wildcard.

    For ``_include`` the page resources are the sources; for ``_revinclude`` they are the targets.
    """

    source_type: str | None
    param: str | None
    target_type: str | None = None
    iterate: bool = False
    reverse: bool = False


@dataclass
class SearchRequest:
    """A parsed search: criteria (AND of OR-lists) plus the result-shaping control parameters.

    ``types`` restricts a system-wide search (``_type``); for a type-level search
    it is ``(resource_type,)``. ``snapshot`` (``_snapshot``) bounds matches to
    ``resource.pk <= snapshot`` so later pages of a search do not shift as
    resources are created; ``offset`` (``_offset``) is applied by the repository.
    ``ignored`` lists parameter names (never values) dropped under lenient handling.
    """

    resource_type: str | None
    types: tuple[str, ...] = ()
    criteria: list[AnyCriterion] = field(default_factory=list)
    sort: list[SortKey] = field(default_factory=list)
    count: int | None = None
    offset: int = 0
    snapshot: int | None = None
    total: Total | None = None
    summary: Summary | None = None
    elements: tuple[str, ...] | None = None
    include: list[IncludeSpec] = field(default_factory=list)
    revinclude: list[IncludeSpec] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
