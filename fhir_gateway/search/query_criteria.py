"""Parsing one search criterion: ``name[:modifier][.chain]=values`` and ``_has:…`` into :mod:`.query_model`.

https://hl7.org/fhir/R4/search.html#modifiers, #chaining, #has.
Supported modifiers by parameter type:

==========  ==========================================================
string      ``:exact`` ``:contains``
token       ``:not`` ``:text`` (``_id``: ``:not``)
reference   ``:[Type]`` ``:identifier`` (and chaining ``.param``)
uri         ``:above`` ``:below`` (path-segment semantics)
all         ``:missing`` (not ``_id``/``_lastUpdated``)
==========  ==========================================================

``:in`` ``:not-in`` ``:above`` ``:below`` (token) and ``:of-type`` need a
terminology service and are refused as not-supported, as are ``_text``,
``_content``, ``_query``, ``_filter``, ``_list``, ``_contained``,
``_containedType``, ``phonetic`` and ``special`` parameters such as ``near``.
"""
from __future__ import annotations

from dataclasses import dataclass

from fhir_gateway.errors import InvalidSearch
from fhir_gateway.search.query_model import (
    RESOURCE_COLUMN_PARAMS,
    AnyCriterion,
    ChainCriterion,
    Criterion,
    HasCriterion,
    TokenValue,
    Value,
)
from fhir_gateway.search.query_values import (
    effective_targets,
    invalid,
    parse_composite,
    parse_date,
    parse_number,
    parse_quantity,
    parse_reference,
    parse_string,
    parse_text,
    parse_token,
    parse_uri,
    split_escaped,
    unescape,
    unsupported,
)
from fhir_gateway.search.registry import SearchParam, SearchRegistry

NOT_SUPPORTED_PARAMS = frozenset({
    "_text", "_content", "_query", "_filter", "_list", "_contained", "_containedType", "phonetic",
})
# Longest chain accepted: ``a.b.c.d`` / nested ``_has`` (each link is a join).
MAX_DEPTH = 3
_MODIFIERS = {
    "string": frozenset({"exact", "contains"}),
    "token": frozenset({"not", "text"}),
    "uri": frozenset({"above", "below"}),
    "reference": frozenset({"identifier"}),
}
_TERMINOLOGY_MODIFIERS = frozenset({"in", "not-in", "above", "below", "of-type"})
_COMMON_BASES = frozenset({"Resource", "DomainResource"})


@dataclass(frozen=True, slots=True)
class ParseContext:
    """What parsing needs besides the query: the registry, the clock (for ``ap``) and this server's base URL."""

    registry: SearchRegistry
    now: int
    base_url: str | None = None


def resolve_param(ctx: ParseContext, types: tuple[str, ...], code: str, label: str) -> SearchParam:
    """The parameter ``code`` as defined for every type in ``types`` (``()``: a Resource-level parameter)."""
    if code in NOT_SUPPORTED_PARAMS:
        raise unsupported(label, "not supported by this server")
    if types:
        found = [ctx.registry.get(t, code) for t in types]
        param = found[0]
        if param is None or any(p is None or p.type != param.type for p in found):
            raise unsupported(label, "unknown search parameter")
    else:
        param = ctx.registry.get(min(ctx.registry.resource_types), code)
        if param is None or not _COMMON_BASES.intersection(param.definition.get("base", ())):
            raise unsupported(label, "unknown search parameter for a search across all types")
    if param.type == "special" or (param.expression is None and code not in RESOURCE_COLUMN_PARAMS):
        raise unsupported(label, "not supported by this server")
    return param


def parse_criterion(ctx: ParseContext, types: tuple[str, ...], name: str, raw: str, *,
                    label: str | None = None, depth: int = 0) -> AnyCriterion:
    """Parse ``name=raw`` for a search over ``types``; ``label`` is the outermost name, used in errors."""
    label = label or name
    if depth > MAX_DEPTH:
        raise unsupported(label, "chain too long")
    if name.startswith("_has:"):
        return _parse_has(ctx, types, name, raw, label, depth)
    head, dot, rest = name.partition(".")
    if dot:
        return _parse_chain(ctx, types, head, rest, raw, label, depth)
    code, _, modifier_text = name.partition(":")
    modifier = modifier_text or None
    param = resolve_param(ctx, types, code, label)
    if modifier == "missing":
        if code in RESOURCE_COLUMN_PARAMS:
            raise unsupported(label, ":missing is not supported here")
        if raw not in ("true", "false"):
            raise invalid(label, ":missing takes true or false")
        return Criterion(label, types, param, modifier, (), missing=raw == "true")
    _check_modifier(ctx, param, modifier, label)
    values = tuple(parse_value(ctx, param, modifier, piece, label) for piece in split_escaped(raw, ","))
    return Criterion(label, types, param, modifier, values)


def _check_modifier(ctx: ParseContext, param: SearchParam, modifier: str | None, label: str) -> None:
    if modifier is None:
        return
    if param.code in RESOURCE_COLUMN_PARAMS:
        if param.code == "_id" and modifier == "not":
            return
        raise unsupported(label, "modifier not supported here")
    if modifier in _MODIFIERS.get(param.type, ()):
        return
    if param.type == "reference" and modifier in ctx.registry.resource_types:
        if param.targets and modifier not in param.targets:
            raise invalid(label, "resource type is not a target of this parameter")
        return
    if modifier in _TERMINOLOGY_MODIFIERS:
        raise unsupported(label, "modifier needs a terminology service, not supported")
    raise unsupported(label, "unknown or unsupported modifier")


def parse_value(ctx: ParseContext, param: SearchParam, modifier: str | None, piece: str, label: str) -> Value:
    """One comma-separated value of ``param`` under ``modifier``."""
    kind = param.type
    if kind == "token":
        if modifier == "text":
            return parse_text(label, piece)
        if param.code == "_id":
            code = unescape(piece)
            if not code:
                raise invalid(label, "empty id")
            return TokenValue(code=code)
        return parse_token(label, piece)
    if kind == "reference":
        if modifier == "identifier":
            return parse_token(label, piece)
        return parse_reference(label, piece, param, ctx.registry.resource_types, type_modifier=modifier,
                               base_url=ctx.base_url)
    if kind == "string":
        return parse_string(label, piece)
    if kind == "date":
        return parse_date(label, piece, ctx.now)
    if kind == "number":
        return parse_number(label, piece)
    if kind == "quantity":
        return parse_quantity(label, piece)
    if kind == "uri":
        return parse_uri(label, piece)
    if kind == "composite":
        return parse_composite(label, piece, param, lambda p, s: parse_value(ctx, p, None, s, label))
    raise unsupported(label, f"{kind} parameters are not supported")


def _parse_chain(ctx: ParseContext, types: tuple[str, ...], head: str, rest: str, raw: str, label: str,
                 depth: int) -> ChainCriterion:
    """``ref[:Type].rest``: with no ``:Type``, every target type that defines ``rest`` is tried (OR)."""
    code, _, type_modifier = head.partition(":")
    param = resolve_param(ctx, types, code, label)
    if param.type != "reference":
        raise unsupported(label, "only reference parameters can be chained")
    if type_modifier:
        if type_modifier not in ctx.registry.resource_types:
            raise invalid(label, "unknown resource type in chain")
        if param.targets and type_modifier not in param.targets:
            raise invalid(label, "resource type is not a target of this parameter")
        candidates: tuple[str, ...] = (type_modifier,)
    else:
        candidates = tuple(t for t in effective_targets(param) if t in ctx.registry.resource_types)
        if not candidates:
            raise invalid(label, "this reference needs a :Type modifier to be chained")
    links: list[tuple[str, AnyCriterion]] = []
    errors: list[InvalidSearch] = []
    for target in candidates:
        try:
            links.append((target, parse_criterion(ctx, (target,), rest, raw, label=label, depth=depth + 1)))
        except InvalidSearch as exc:
            if len(candidates) == 1:
                raise
            errors.append(exc)
    if not links:
        raise errors[0]
    return ChainCriterion(label, types, param, tuple(links))


def _parse_has(ctx: ParseContext, types: tuple[str, ...], name: str, raw: str, label: str,
               depth: int) -> HasCriterion:
    """``_has:Source:ref:rest`` (reverse chaining; ``rest`` may itself be a ``_has`` or a chain)."""
    parts = name.split(":", 3)
    if len(parts) != 4 or not all(parts[1:]):
        raise invalid(label, "expected _has:Type:reference:parameter")
    _, source, ref_code, rest = parts
    if len(types) != 1:
        raise unsupported(label, "_has is only supported in a search of one resource type")
    if source not in ctx.registry.resource_types:
        raise invalid(label, "unknown resource type in _has")
    param = ctx.registry.get(source, ref_code)
    if param is None or param.type != "reference":
        raise unsupported(label, "unknown reference parameter in _has")
    if param.targets and types[0] not in param.targets:
        raise invalid(label, "the _has reference cannot point at this resource type")
    inner = parse_criterion(ctx, (source,), rest, raw, label=label, depth=depth + 1)
    return HasCriterion(label, types, source, param, inner)
