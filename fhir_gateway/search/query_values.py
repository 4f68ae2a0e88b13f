"""Parsing one search value of each parameter type into the typed values of :mod:`.query_model`.

Sans-IO and key-free. Syntax per https://hl7.org/fhir/R4/search.html:
escaping (``\\,`` ``\\$`` ``\\|`` ``\\\\``, #escaping), prefixes (#prefix),
token (#token), reference (#reference), quantity (#quantity), composite (#composite).
Errors name the parameter, never the value (values may be PHI).
"""
from __future__ import annotations

import re
from collections.abc import Callable

from fhir_gateway.errors import InvalidSearch
from fhir_gateway.search.query_model import (
    PREFIXES,
    CompositeValue,
    DateValue,
    NumberValue,
    Prefix,
    QuantityValue,
    ReferenceValue,
    StringValue,
    TextValue,
    TokenValue,
    UriValue,
    Value,
)
from fhir_gateway.search.registry import SearchParam
from fhir_gateway.search.values import DateFormatError, date_range, normalize_string, number_range

DAY_MICROS = 86_400 * 1_000_000
_UNESCAPE = re.compile(r"\\([\\,$|])")
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_RESOLVE_IS = re.compile(r"\.where\(resolve\(\) is (\w+)\)\s*$")


def invalid(name: str, what: str) -> InvalidSearch:
    """A malformed value for a known parameter (IssueType ``invalid``); always an error, even when lenient."""
    return InvalidSearch(f"Invalid value for search parameter '{name}': {what}", expression=[name], code="invalid")


def unsupported(name: str, what: str) -> InvalidSearch:
    """An unknown or unsupported parameter/modifier (IssueType ``not-supported``); dropped when lenient."""
    return InvalidSearch(f"Search parameter '{name}': {what}", expression=[name])


def split_escaped(text: str, sep: str, maxsplit: int = -1) -> list[str]:
    """Split on ``sep`` where it is not escaped by a backslash; escapes are kept for the next level."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        if ch == sep and (maxsplit < 0 or len(parts) < maxsplit):
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def unescape(text: str) -> str:
    return _UNESCAPE.sub(r"\1", text)


def effective_targets(param: SearchParam) -> tuple[str, ...]:
    """The types a reference parameter can really point at.

    ``Observation.subject.where(resolve() is Patient)`` declares targets
    (Patient, Group) but only ever indexes Patient references, so ``patient=123``
    means ``patient=Patient/123``.
    """
    if param.expression:
        found = {m.group(1) for b in param.expression.split("|") if (m := _RESOLVE_IS.search(b.strip()))}
        if len(found) == 1 and all(_RESOLVE_IS.search(b.strip()) for b in param.expression.split("|")):
            return (found.pop(),)
    return param.targets


def split_prefix(name: str, raw: str) -> tuple[Prefix, str]:
    """Split an optional two-letter comparison prefix (``ge2020``) off a date/number/quantity value."""
    if len(raw) >= 2 and raw[:2].isalpha():
        head = raw[:2]
        if head not in PREFIXES:
            raise invalid(name, "unknown prefix")
        prefix: Prefix = head  # type: ignore[assignment]  # membership checked above
        return prefix, raw[2:]
    return "eq", raw


def parse_token(name: str, raw: str) -> TokenValue:
    parts = split_escaped(raw, "|", 1)
    if len(parts) == 1:
        code = unescape(parts[0])
        if not code:
            raise invalid(name, "empty token")
        return TokenValue(code=code)
    system, code = unescape(parts[0]), unescape(parts[1])
    if not system and not code:
        raise invalid(name, "empty token")
    if not system:
        return TokenValue(code=code, no_system=True)
    return TokenValue(system=system, code=code or None)


def parse_text(name: str, raw: str) -> TextValue:
    text = normalize_string(unescape(raw))
    if not text:
        raise invalid(name, "empty text")
    return TextValue(text)


def parse_string(name: str, raw: str) -> StringValue:
    exact = unescape(raw)
    value = normalize_string(exact)
    if not value:
        raise invalid(name, "empty string")
    return StringValue(value=value, exact=exact)


def parse_date(name: str, raw: str, now: int) -> DateValue:
    """A date value with its implicit range; ``ap`` widens it by 10% of its distance from now (≥ 1 day)."""
    prefix, rest = split_prefix(name, raw)
    # An unencoded '+' in a timezone offset arrives as a space.
    rest = unescape(rest).replace(" ", "+")
    try:
        low, high = date_range(rest)
    except DateFormatError:
        raise invalid(name, "not a FHIR date") from None
    if prefix == "ap":
        widen = max(abs(now - (low + high) // 2) // 10, DAY_MICROS)
        low, high = low - widen, high + widen
    return DateValue(prefix, low, high)


def parse_number(name: str, raw: str) -> NumberValue:
    prefix, rest = split_prefix(name, raw)
    try:
        value, low, high = number_range(unescape(rest).strip())
    except ValueError:
        raise invalid(name, "not a number") from None
    return NumberValue(prefix, value, low, high)


def parse_quantity(name: str, raw: str) -> QuantityValue:
    parts = split_escaped(raw, "|")
    if len(parts) not in (1, 3):
        raise invalid(name, "expected number|system|code")
    number = parse_number(name, parts[0])
    if len(parts) == 1:
        return QuantityValue(number)
    return QuantityValue(number, unescape(parts[1]) or None, unescape(parts[2]) or None)


def parse_uri(name: str, raw: str) -> UriValue:
    value = unescape(raw)
    if not value:
        raise invalid(name, "empty uri")
    return UriValue(value)


def parse_reference(name: str, raw: str, param: SearchParam, resource_types: frozenset[str], *,
                    type_modifier: str | None = None, base_url: str | None = None) -> ReferenceValue:
    """``Type/id``, ``id``, ``Type/id/_history/v``, an absolute URL, or a canonical ``url|version``.

    A URL under ``base_url`` (this server) is treated as the relative reference it stands for.
    """
    value = unescape(raw).strip()
    if base_url:
        base = base_url.rstrip("/") + "/"
        if value.startswith(base):
            value = value[len(base):]
    if "://" in value or value.startswith(("urn:", "#")):
        url, _, canonical_version = value.partition("|")
        if type_modifier is not None:
            raise invalid(name, "a type modifier needs a relative reference or an id")
        return ReferenceValue(url=url, version=canonical_version or None)
    segments = value.split("/")
    if len(segments) == 1:
        if not _ID.match(value):
            raise invalid(name, "not a resource id")
        if type_modifier is not None:
            return ReferenceValue(target_type=type_modifier, target_id=value)
        targets = effective_targets(param)
        return ReferenceValue(target_type=targets[0] if len(targets) == 1 else None, target_id=value)
    if len(segments) not in (2, 4) or (len(segments) == 4 and segments[2] != "_history"):
        raise invalid(name, "expected Type/id")
    rtype, fid = segments[0], segments[1]
    if rtype not in resource_types or not _ID.match(fid):
        raise invalid(name, "expected Type/id")
    if type_modifier is not None and type_modifier != rtype:
        raise invalid(name, "type modifier and reference type disagree")
    if param.targets and rtype not in param.targets:
        raise invalid(name, "resource type is not a target of this parameter")
    version = segments[3] if len(segments) == 4 else None
    return ReferenceValue(target_type=rtype, target_id=fid, version=version)


def parse_composite(name: str, raw: str, param: SearchParam, parse_part: Callable[[SearchParam, str], Value],
                    ) -> CompositeValue:
    """``a$b``: one value per component, each parsed by its component parameter's type."""
    pieces = split_escaped(raw, "$")
    if not param.components:
        raise unsupported(name, "composite parameter without components")
    if len(pieces) != len(param.components):
        raise invalid(name, f"expected {len(param.components)} '$'-separated components")
    return CompositeValue(tuple(parse_part(c.param, piece) for c, piece in zip(param.components, pieces, strict=True)))
