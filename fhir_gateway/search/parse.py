"""Query parameters → typed :class:`SearchRequest` (sans-IO: no database, no keys, no clock unless defaulted).

https://hl7.org/fhir/R4/search.html. Each ``(name, value)`` pair is either a
result parameter (:mod:`.query_control`) or a criterion (:mod:`.query_criteria`):
repeated names are AND-ed, comma-separated values OR-ed. Parameters with an
empty value are ignored. Unknown or unsupported parameters raise
:class:`~fhir_gateway.errors.InvalidSearch` (``not-supported``) unless
``lenient`` (``Prefer: handling=lenient``), in which case their names go to
``request.ignored``; malformed values always raise (``invalid``).
"""
from __future__ import annotations

from datetime import UTC, datetime

from fhir_gateway.errors import InvalidSearch, UnknownResourceType
from fhir_gateway.search.query_control import CONTROL_PARAMS, SINGLE_VALUED, apply_control, parse_types
from fhir_gateway.search.query_criteria import ParseContext, parse_criterion
from fhir_gateway.search.query_model import (
    AnyCriterion,
    ChainCriterion,
    CompositeValue,
    Criterion,
    DateValue,
    HasCriterion,
    IncludeSpec,
    NumberValue,
    QuantityValue,
    ReferenceValue,
    SearchRequest,
    SortKey,
    StringValue,
    TextValue,
    TokenValue,
    UriValue,
    Value,
)
from fhir_gateway.search.query_values import invalid, unsupported
from fhir_gateway.search.registry import SearchRegistry
from fhir_gateway.search.values import instant_to_micros

__all__ = [
    "AnyCriterion", "ChainCriterion", "CompositeValue", "Criterion", "DateValue", "HasCriterion", "IncludeSpec",
    "NumberValue", "QuantityValue", "ReferenceValue", "SearchRequest", "SortKey", "StringValue", "TextValue",
    "TokenValue", "UriValue", "Value", "parse_search",
]


def parse_search(registry: SearchRegistry, resource_type: str | None, params: list[tuple[str, str]], *,
                 lenient: bool = False, max_count: int = 1000, now: int | None = None,
                 base_url: str | None = None) -> SearchRequest:
    """Parse a search of ``resource_type`` (None: across all types) given its query parameters.

    ``now`` (µs since the epoch, UTC) anchors the ``ap`` prefix; ``base_url``
    lets absolute references to this server match relative ones. ``_count`` is
    capped at ``max_count``.
    """
    if resource_type is not None and resource_type not in registry.resource_types:
        raise UnknownResourceType("Unknown resource type", expression=[resource_type])
    if now is None:
        now = instant_to_micros(datetime.now(UTC))
    ctx = ParseContext(registry, now, base_url)
    request = SearchRequest(resource_type, types=(resource_type,) if resource_type else ())
    seen: set[str] = set()

    def drop_or_raise(name: str, exc: InvalidSearch) -> None:
        if lenient and exc.code == "not-supported":
            request.ignored.append(name)
        else:
            raise exc

    # _type decides which parameters exist, so it goes first.
    for name, raw in params:
        if name.partition(":")[0] != "_type" or raw == "":
            continue
        try:
            if resource_type is not None:
                raise unsupported(name, "only allowed in a search across all types")
            if "_type" in seen:
                raise invalid(name, "repeated")
            seen.add("_type")
            request.types = parse_types(ctx, raw)
        except InvalidSearch as exc:
            drop_or_raise(name, exc)

    for name, raw in params:
        code = name.partition(":")[0]
        if raw == "" or not name or code == "_type":
            continue
        try:
            if code in CONTROL_PARAMS:
                if code in SINGLE_VALUED:
                    if code in seen:
                        raise invalid(code, "repeated")
                    seen.add(code)
                apply_control(ctx, request, name, raw, max_count=max_count)
            else:
                request.criteria.append(parse_criterion(ctx, request.types, name, raw))
        except InvalidSearch as exc:
            drop_or_raise(name, exc)
    return request
