"""One search value → a boolean SQL predicate over one index-table row (SQLAlchemy Core).

Semantics, https://hl7.org/fhir/R4/search.html:

* date (#date, #prefix): row ``[low, high]`` and search ``[s_low, s_high]`` are
  inclusive µs ranges. eq ⇒ low≥s_low ∧ high≤s_high; ne ⇒ ¬eq; gt ⇒ high>s_high;
  lt ⇒ low<s_low; ge ⇒ high≥s_low; le ⇒ low≤s_high; sa ⇒ low>s_high;
  eb ⇒ high<s_low; ap ⇒ overlap with the search range already widened by
  :func:`~.query_values.parse_date`.
* number/quantity (#number): ``100`` means ``[99.5, 100.5)``. eq ⇒ the row's
  value lies in that range; ne ⇒ it does not; gt/lt/ge/le compare with the exact
  value ("greater than exactly 100"); sa ⇒ row low ≥ s_high; eb ⇒ row high ≤ s_low;
  ap ⇒ within ±10% of the value (never narrower than the precision range).
* a Range-valued quantity row (``value`` NULL) is compared as a range whose NULL
  end is open: eq ⇒ inside the search range; gt/ge ⇒ its top is above; lt/le ⇒ its
  bottom is below; sa/eb ⇒ wholly above/below.
* quantity units (#quantity): ``n|system|code`` needs system and code;
  ``n||code`` matches the code or the unit; no UCUM canonicalisation.
* uri (#uri): ``:above`` ⇒ the stored URI is the value or one of its
  path-segment ancestors; ``:below`` ⇒ the stored URI is the value or lies under it.

Where a value may be blind-indexed the predicate is built through a ``protect``
callback (see :mod:`.hashing`), which hands the builder the stored form.

Blinded parameters (a :class:`~.hashing.BlindIndexer` policy: :func:`blind_string_predicate`
and :func:`blind_date_predicate`; a token is :func:`token_predicate` with a digesting
``protect``) are matched by equality on digests only: token codes; string prefixes
(``value``) and ``:exact`` (``exact``); dates as ``eq`` on a year, month or day
(``code`` of ``idx_token``). What a digest cannot answer — ``:contains``, ``:text``,
range prefixes, times — is refused with a 400 naming the parameter, never the value.
"""
from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import ColumnElement, and_, false, func, or_
from sqlalchemy.sql.expression import FromClause

from fhir_gateway.errors import InvalidSearch
from fhir_gateway.search.hashing import STRING_VALUE_MAX, calendar_key
from fhir_gateway.search.query_model import (
    DateValue,
    NumberValue,
    QuantityValue,
    ReferenceValue,
    StringValue,
    TextValue,
    TokenValue,
    UriValue,
)
from fhir_gateway.search.query_prefix import StartsWith
from fhir_gateway.search.query_values import unsupported

Predicate = ColumnElement[bool]
# protect(raw value, build(stored value) -> predicate) -> predicate
Protect = Callable[[str, Callable[[str], Predicate]], Predicate]
_URL_ROOT = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*)(/[^?#]*)?$")


def token_predicate(t: FromClause, value: TokenValue, protect: Protect) -> Predicate:
    conds: list[Predicate] = []
    if value.code is not None:
        conds.append(protect(value.code, lambda code: t.c.code == code))
    if value.system is not None:
        conds.append(t.c.system == value.system)
    elif value.no_system:
        conds.append(t.c.system.is_(None))
    return and_(*conds)


def text_predicate(t: FromClause, value: TextValue) -> Predicate:
    """Token ``:text``: the normalised display/text starts with the value (string semantics)."""
    return StartsWith(t.c.text, value.text)


def string_predicate(t: FromClause, value: StringValue, modifier: str | None, protect: Protect,
                     label: str) -> Predicate:
    """startsWith by default (equality on a blind index, whose rows hold each prefix), ``:exact``, ``:contains``."""
    if modifier == "exact":
        return protect(value.exact, lambda exact: t.c.exact == exact)

    # The extractor cuts stored values to the column width; a longer prefix is cut the same way.
    width = getattr(t.c.value.type, "length", None)

    def build(stored: str) -> Predicate:
        if stored != value.value:  # blind-indexed
            if modifier == "contains":
                raise unsupported(label, ":contains is not available on a protected parameter")
            return t.c.value == stored
        if modifier == "contains":
            return t.c.value.contains(stored, autoescape=True)
        return StartsWith(t.c.value, stored[:width] if width else stored)

    return protect(value.value, build)


def blinded(label: str, code: str, what: str) -> InvalidSearch:
    """The 400 for a search feature the blind index of parameter ``code`` cannot answer (never names the value)."""
    return unsupported(label, f"'{code}' holds identifying data and is stored as a blind index (keyed hash); "
                              f"{what}")


def blind_string_predicate(t: FromClause, value: StringValue, modifier: str | None, protect: Protect,
                           protect_exact: Protect, label: str, code: str) -> Predicate:
    """A string on a blinded parameter: one digest row per normalised prefix makes startsWith an equality."""
    if modifier == "contains":
        raise blinded(label, code, ":contains is not available, only prefix and :exact search")
    if modifier == "exact":
        return protect_exact(value.exact, lambda exact: t.c.exact == exact)
    return protect(value.value[:STRING_VALUE_MAX], lambda stored: t.c.value == stored)


def blind_date_predicate(t: FromClause, value: DateValue, protect: Protect, label: str, code: str) -> Predicate:
    """A date on a blinded parameter: ``eq`` on a whole year, month or day, matched on ``idx_token.code``."""
    if value.prefix != "eq":
        raise blinded(label, code, f"the '{value.prefix}' prefix is not available, only a year (1974), "
                             "year-month (1974-12) or date (1974-12-25) without a prefix")
    key = calendar_key(value.low, value.high)
    if key is None:
        raise blinded(label, code, "only a year (1974), year-month (1974-12) or date (1974-12-25) can be searched, "
                             "not a time")
    return protect(key, lambda stored: t.c.code == stored)


def date_predicate(low: ColumnElement[int], high: ColumnElement[int], value: DateValue) -> Predicate:
    s_low, s_high = value.low, value.high
    match value.prefix:
        case "eq":
            return and_(low >= s_low, high <= s_high)
        case "ne":
            return or_(low < s_low, high > s_high)
        case "gt":
            return high > s_high
        case "lt":
            return low < s_low
        case "ge":
            return high >= s_low
        case "le":
            return low <= s_high
        case "sa":
            return low > s_high
        case "eb":
            return high < s_low
        case "ap":
            return and_(low <= s_high, high >= s_low)
    raise AssertionError(value.prefix)  # pragma: no cover


def number_predicate(t: FromClause, value: NumberValue) -> Predicate:
    col: ColumnElement[float] = t.c.value
    low = func.coalesce(t.c.low, col)
    high = func.coalesce(t.c.high, col)
    n = value.value
    match value.prefix:
        case "eq":
            return and_(col >= value.low, col < value.high)
        case "ne":
            return or_(col < value.low, col >= value.high)
        case "gt":
            return col > n
        case "lt":
            return col < n
        case "ge":
            return col >= n
        case "le":
            return col <= n
        case "sa":
            return low >= value.high
        case "eb":
            return high <= value.low
        case "ap":
            margin = abs(n) * 0.1
            return and_(col >= min(value.low, n - margin), col <= max(value.high, n + margin))
    raise AssertionError(value.prefix)  # pragma: no cover


def range_predicate(low: ColumnElement[float], high: ColumnElement[float], value: NumberValue) -> Predicate:
    """A row that is a range (a Range-valued quantity: ``value`` NULL, NULL ends open) against a number."""
    n = value.value
    match value.prefix:
        case "eq":
            return and_(low >= value.low, high < value.high)
        case "ne":
            return or_(low.is_(None), high.is_(None), low < value.low, high >= value.high)
        case "gt":
            return or_(high.is_(None), high > n)
        case "lt":
            return or_(low.is_(None), low < n)
        case "ge":
            return or_(high.is_(None), high >= n)
        case "le":
            return or_(low.is_(None), low <= n)
        case "sa":
            return low >= value.high
        case "eb":
            return high <= value.low
        case "ap":
            margin = abs(n) * 0.1
            return and_(or_(low.is_(None), low <= max(value.high, n + margin)),
                        or_(high.is_(None), high >= min(value.low, n - margin)))
    raise AssertionError(value.prefix)  # pragma: no cover


def quantity_predicate(t: FromClause, value: QuantityValue) -> Predicate:
    """Unit conditions plus :func:`number_predicate` on ``value``, or :func:`range_predicate` for a Range row."""
    conds = [or_(and_(t.c.value.is_not(None), number_predicate(t, value.number)),
                 and_(t.c.value.is_(None), or_(t.c.low.is_not(None), t.c.high.is_not(None)),
                      range_predicate(t.c.low, t.c.high, value.number)))]
    if value.system is not None:
        conds.append(t.c.system == value.system)
        if value.code is not None:
            conds.append(t.c.code == value.code)
    elif value.code is not None:
        conds.append(or_(t.c.code == value.code, t.c.unit == value.code))
    return and_(*conds)


def reference_predicate(t: FromClause, value: ReferenceValue) -> Predicate:
    conds: list[Predicate] = []
    if value.url is not None:
        conds.append(t.c.url == value.url)
    else:
        if value.target_id is None:
            return false()
        conds.append(t.c.target_id == value.target_id)
        if value.target_type is not None:
            conds.append(t.c.target_type == value.target_type)
    if value.version is not None:
        conds.append(t.c.version == value.version)
    return and_(*conds)


def uri_ancestors(uri: str) -> list[str]:
    """``http://a/b/c`` → ``[http://a, http://a/b, http://a/b/c]``; a non-hierarchical URI is its own only ancestor."""
    match = _URL_ROOT.match(uri)
    if not match:
        return [uri]
    root, path = match.group(1), match.group(2) or ""
    found = [root]
    current = root
    for segment in path.split("/")[1:]:
        if not segment:
            continue
        current = f"{current}/{segment}"
        found.append(current)
    if uri not in found:
        found.append(uri)
    return found


def uri_predicate(t: FromClause, value: UriValue, modifier: str | None) -> Predicate:
    if modifier == "above":
        return t.c.value.in_(uri_ancestors(value.value))
    if modifier == "below":
        below = value.value.rstrip("/") + "/"
        return or_(t.c.value == value.value, StartsWith(t.c.value, below))
    return t.c.value == value.value
