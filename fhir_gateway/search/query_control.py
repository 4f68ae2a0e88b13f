"""Search result parameters (https://hl7.org/fhir/R4/search.html#return): how results are shaped, not matched.

``_sort`` ``_count`` ``_total`` ``_summary`` ``_elements`` ``_include``
``_revinclude`` (``:iterate``; R3's ``:recurse`` is read as ``:iterate``),
``_type`` (system-wide search only), ``_format``/``_pretty`` (accepted; the
REST layer acts on them), and this server's paging parameters ``_offset``
(rows to skip) and ``_snapshot`` (highest ``resource.pk`` the search may see),
which the repository writes into next/previous links.
"""
from __future__ import annotations

import re

from fhir_gateway.search.query_criteria import ParseContext, resolve_param
from fhir_gateway.search.query_model import (
    IncludeSpec,
    SearchRequest,
    SortKey,
    Summary,
    Total,
)
from fhir_gateway.search.query_values import invalid, unsupported

CONTROL_PARAMS = frozenset({
    "_sort", "_count", "_offset", "_snapshot", "_total", "_summary", "_elements", "_include", "_revinclude",
    "_format", "_pretty", "_type",
})
# Control parameters that may appear once; _include/_revinclude repeat.
SINGLE_VALUED = frozenset({"_sort", "_count", "_offset", "_snapshot", "_total", "_summary", "_elements", "_type"})
_TOTALS: dict[str, Total] = {"none": "none", "estimate": "estimate", "accurate": "accurate"}
_SUMMARIES: dict[str, Summary] = {"true": "true", "text": "text", "data": "data", "count": "count", "false": "false"}
_ELEMENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$")


def parse_int(name: str, raw: str) -> int:
    """A non-negative decimal integer."""
    if not raw.isdigit() or len(raw) > 18:
        raise invalid(name, "expected a non-negative integer")
    return int(raw)


def parse_types(ctx: ParseContext, raw: str) -> tuple[str, ...]:
    """``_type=A,B`` for a system-wide search."""
    types = tuple(dict.fromkeys(t.strip() for t in raw.split(",") if t.strip()))
    if not types or any(t not in ctx.registry.resource_types for t in types):
        raise invalid("_type", "expected resource types")
    return types


def parse_sort(ctx: ParseContext, types: tuple[str, ...], raw: str) -> list[SortKey]:
    """``_sort=a,-b``: ``-`` sorts descending; composite and special parameters cannot be sorted on."""
    keys: list[SortKey] = []
    for item in raw.split(","):
        item = item.strip()
        descending = item.startswith("-")
        code = item[1:] if descending else item
        if not code or ":" in code or "." in code:
            raise invalid("_sort", "expected parameter names")
        param = resolve_param(ctx, types, code, "_sort")
        if param.type == "composite":
            raise unsupported("_sort", "sorting on a composite parameter is not supported")
        keys.append(SortKey(code, param, descending))
    return keys


def parse_elements(raw: str) -> tuple[str, ...]:
    elements = tuple(e.strip() for e in raw.split(",") if e.strip())
    if not elements or not all(_ELEMENT.match(e) for e in elements):
        raise invalid("_elements", "expected element names")
    return elements


def parse_include(ctx: ParseContext, name: str, modifier: str, raw: str) -> IncludeSpec:
    """``Source:param[:Target]``, ``Source:*`` or ``*``, with ``:iterate`` on the parameter name."""
    reverse = name == "_revinclude"
    if modifier not in ("", "iterate", "recurse"):
        raise unsupported(name, "unknown modifier")
    iterate = bool(modifier)
    if raw == "*":
        return IncludeSpec(None, None, None, iterate, reverse)
    parts = raw.split(":")
    if len(parts) not in (2, 3):
        raise invalid(name, "expected Type:parameter[:targetType]")
    source, code = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    if source not in ctx.registry.resource_types:
        raise invalid(name, "unknown resource type")
    if target is not None and target not in ctx.registry.resource_types:
        raise invalid(name, "unknown target resource type")
    if code == "*":
        return IncludeSpec(source, None, target, iterate, reverse)
    param = ctx.registry.get(source, code)
    if param is None or param.type != "reference":
        raise invalid(name, "not a reference parameter of that type")
    if target is not None and param.targets and target not in param.targets:
        raise invalid(name, "target type is not a target of that parameter")
    return IncludeSpec(source, code, target, iterate, reverse)


def apply_control(ctx: ParseContext, request: SearchRequest, name: str, raw: str, *, max_count: int) -> None:
    """Set the control parameter ``name`` (possibly with a modifier) on ``request``."""
    code, _, modifier = name.partition(":")
    if code in ("_include", "_revinclude"):
        spec = parse_include(ctx, code, modifier, raw)
        (request.revinclude if spec.reverse else request.include).append(spec)
        return
    if modifier:
        raise unsupported(name, "modifier not supported on this parameter")
    if code == "_sort":
        request.sort = parse_sort(ctx, request.types, raw)
    elif code == "_count":
        request.count = min(parse_int(code, raw), max_count)
    elif code == "_offset":
        request.offset = parse_int(code, raw)
    elif code == "_snapshot":
        request.snapshot = parse_int(code, raw)
    elif code == "_total":
        if raw not in _TOTALS:
            raise invalid(code, "expected none, estimate or accurate")
        request.total = _TOTALS[raw]
    elif code == "_summary":
        if raw not in _SUMMARIES:
            raise invalid(code, "expected true, text, data, count or false")
        request.summary = _SUMMARIES[raw]
    elif code == "_elements":
        request.elements = parse_elements(raw)
    # _format and _pretty are the REST layer's; _type was applied before the criteria.
