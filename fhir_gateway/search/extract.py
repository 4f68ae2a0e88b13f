"""Index extraction at write time: a resource's JSON → its search index rows (:class:`IndexRows`).

Data-driven from the SearchParameter expressions in the :class:`SearchRegistry`:

* every parameter's expression is compiled once (lazily, per resource type) by
  :mod:`fhir_gateway.search.fhirpath_compile` into a plain dict walker; the few
  expressions outside that subset are compiled once with ``fhirpathpy.compile``
  (R4 model, with a ``resolve()`` that reads the reference string so
  ``where(resolve() is Patient)`` works) and evaluated per resource;
* the matched values become rows **by data shape**, never by resource type: the
  parameter type picks the table, the JSON shape of each value (Coding,
  CodeableConcept, Identifier, ContactPoint, HumanName, Address, Period, Timing,
  Reference, Quantity, Range, Money, primitives) picks how it is taken apart.

Conventions the query side must share (see also :mod:`.index_rows`, :mod:`.values`):

* token: ``code`` is the code / identifier value / contact-point value / id /
  ``"true"``/``"false"``; ``text`` is :func:`values.normalize_string` of
  ``Coding.display`` or ``Identifier.type.text``; ``CodeableConcept.text`` gets a
  row of its own with ``system`` and ``code`` both ``None``. A ContactPoint keeps its
  ``system`` (``phone``, ``email``…) in ``system``.
* string: ``value`` is normalised and cut to 255 characters (the column width;
  string search is a prefix match), ``exact`` is as written. A HumanName gives a row
  per part (family, each given, prefix, suffix, text) and one for "given… family";
  an Address a row per part (each line, city, district, state, postalCode, country, text).
* date: ``[low, high]`` inclusive microseconds; a Period's open end is
  ``MIN_TIME``/``MAX_TIME``; a Timing gives one row spanning its events and
  ``repeat.boundsPeriod``.
* reference: ``Type/id`` → type and id; an absolute ``…/Type/id[/_history/v]`` →
  type, id, version and ``url`` (without ``_history``); ``urn:…`` and other URLs → ``url``
  only; a canonical ``url|version`` → ``url`` and ``version`` (plus type and id when the
  URL ends in ``Type/id``); a contained ``#id`` gives no row; a resource (``Bundle.entry[0].resource``)
  → its type and id. ``Reference.identifier`` → a token row with param ``"<param>:identifier"``.
* quantity: ``value`` with ``low``/``high`` from its significant digits
  (:func:`values.number_range`), a comparator opens one side (``None``); a Range has
  ``value`` ``None`` and its ends as ``low``/``high``; Money uses ``system``
  ``urn:iso:std:iso:4217`` and the currency as ``code``.
* composite ``P``: component ``k`` (0-based, in the order of ``SearchParam.components``)
  is stored as param ``P$k``; all rows of one matched element share a ``grp`` number,
  unique within the resource. An element missing any component gives no rows.

Bad data never raises: a value that cannot be converted (an unparsable date, a
non-numeric quantity…) is skipped. Identical rows are written once.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

import fhirpathpy
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models as _fhirpath_models

from fhir_gateway.search.fhirpath_compile import (
    Getter,
    Unsupported,
    build_getter,
    compile_branches,
    compile_getter,
    first_keys,
    parse_reference,
)
from fhir_gateway.search.index_rows import (
    DateRow,
    IndexRows,
    NumberRow,
    QuantityRow,
    ReferenceRow,
    StringRow,
    TokenRow,
    UriRow,
)
from fhir_gateway.search.registry import SearchParam, SearchRegistry
from fhir_gateway.search.values import MAX_TIME, MIN_TIME, DateFormatError, date_range, normalize_string, number_range

log = logging.getLogger(__name__)

STRING_VALUE_MAX = 255  # idx_string.value is String(255)
CURRENCY_SYSTEM = "urn:iso:std:iso:4217"

TokenTail = tuple[str | None, str | None, str | None]  # system, code, text
StringTail = tuple[str, str]  # normalised (cut to STRING_VALUE_MAX), exact
DateTail = tuple[int, int]
ReferenceTail = tuple[str | None, str | None, str | None, str | None]  # type, id, url, version
QuantityTail = tuple[float | None, float | None, float | None, str | None, str | None, str | None]
NumberTail = tuple[float, float, float]


class _Acc:
    """Rows of one resource as tuples in insertion-ordered dicts (deduplicated for free).

    ``memo`` remembers what a matched JSON value was taken apart into, by identity:
    the same CodeableConcept or Quantity is matched by several parameters
    (``code``, ``combo-code``, ``code-value-quantity``…) and is parsed once.
    """

    __slots__ = ("date", "grp", "memo", "number", "quantity", "reference", "resource_types", "string", "token",
                 "uri")

    def __init__(self, resource_types: frozenset[str]) -> None:
        self.token: dict[tuple[Any, ...], None] = {}
        self.string: dict[tuple[Any, ...], None] = {}
        self.date: dict[tuple[Any, ...], None] = {}
        self.reference: dict[tuple[Any, ...], None] = {}
        self.quantity: dict[tuple[Any, ...], None] = {}
        self.number: dict[tuple[Any, ...], None] = {}
        self.uri: dict[tuple[Any, ...], None] = {}
        self.memo: dict[tuple[str, int], tuple[Any, Any]] = {}
        self.grp = 0
        self.resource_types = resource_types

    def parsed(self, kind: str, value: Any, parse: Callable[[Any, _Acc], Any]) -> Any:
        key = (kind, id(value))
        hit = self.memo.get(key)
        if hit is not None and hit[0] is value:  # holding ``value`` keeps its id from being reused
            return hit[1]
        result = parse(value, self)
        self.memo[key] = (value, result)
        return result

    def rows(self) -> IndexRows:
        return IndexRows(
            token=[TokenRow(*k) for k in self.token],
            string=[StringRow(*k) for k in self.string],
            date=[DateRow(*k) for k in self.date],
            reference=[ReferenceRow(*k) for k in self.reference],
            quantity=[QuantityRow(*k) for k in self.quantity],
            number=[NumberRow(*k) for k in self.number],
            uri=[UriRow(*k) for k in self.uri],
        )


#: ``convert(acc, param, value, grp)`` adds the rows of one matched value.
Converter = Callable[[_Acc, str, Any, "int | None"], None]


# --------------------------------------------------------------------------- helpers

@lru_cache(maxsize=16384)
def _text(value: str) -> str | None:
    """Normalised code display / CodeableConcept text (not identifying; the same displays recur, so cached)."""
    return normalize_string(value) or None


@lru_cache(maxsize=16384)
def _date(text: str) -> DateTail | None:
    try:
        return date_range(text)
    except DateFormatError:
        return None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _number_text(value: Any) -> str | None:
    """The decimal text of a JSON number: ints as is, floats by ``repr`` (shortest round-trip text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return value.strip() or None
    return None


def _number(value: Any) -> NumberTail | None:
    text = _number_text(value)
    if text is None:
        return None
    try:
        return number_range(text)
    except ValueError:
        return None


# --------------------------------------------------------------------------- token

def _coding_tail(coding: Any) -> TokenTail | None:
    if type(coding) is not dict:
        return None
    system, code, display = _str(coding.get("system")), _str(coding.get("code")), _str(coding.get("display"))
    text = _text(display) if display is not None else None
    if system is None and code is None and text is None:
        return None
    return system, code, text


def _token_tails(value: Any, acc: _Acc) -> list[TokenTail]:
    t = type(value)
    if t is str:
        return [(None, value, None)]
    if t is bool:
        return [(None, "true" if value else "false", None)]
    if t is dict:
        if "coding" in value or ("text" in value and "value" not in value and "code" not in value):
            # CodeableConcept: a row per coding; its text a row of its own unless a display says the same
            out: list[TokenTail] = []
            codings = value.get("coding")
            if isinstance(codings, list):
                for coding in codings:
                    tail = _coding_tail(coding)
                    if tail is not None:
                        out.append(tail)
            cc_text = _str(value.get("text"))
            text = _text(cc_text) if cc_text is not None else None
            if text is not None and all(tail[2] != text for tail in out):
                out.append((None, None, text))
            return out
        if "value" in value:
            # Identifier {system, value, type} or ContactPoint {system, value}
            code = _str(value["value"])
            if code is None:
                return []
            type_ = value.get("type")
            type_text = _str(type_.get("text")) if type(type_) is dict else None
            return [(_str(value.get("system")), code, _text(type_text) if type_text is not None else None)]
        if "reference" in value or "identifier" in value:  # a Reference where a token is expected
            identifier = value.get("identifier")
            return _token_tails(identifier, acc) if type(identifier) is dict else []
        if "code" in value or "system" in value or "display" in value:  # Coding
            tail = _coding_tail(value)
            return [tail] if tail is not None else []
        return []
    if t is int or t is float or t is Decimal:
        text = _number_text(value)
        return [(None, text, None)] if text is not None else []
    return []


def to_token(acc: _Acc, param: str, value: Any, grp: int | None) -> None:
    rows = acc.token
    for tail in acc.parsed("token", value, _token_tails):
        rows[(param, *tail, grp)] = None


# --------------------------------------------------------------------------- string

_NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
_ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")


def _string_tail(text: str, acc: _Acc) -> StringTail | None:
    normalized = normalize_string(text)
    return (normalized[:STRING_VALUE_MAX], text) if normalized else None


def _string_tails(value: Any, acc: _Acc) -> list[StringTail]:
    texts: list[str] = []
    t = type(value)
    if t is str:
        texts.append(value)
    elif t is dict:
        if "family" in value or "given" in value or "prefix" in value or "suffix" in value:  # HumanName
            for part in _NAME_PARTS:
                texts.extend(_strings(value.get(part)))
            given, family = _strings(value.get("given")), _strings(value.get("family"))
            if given and family:
                texts.append(" ".join([*given, *family]))
        elif any(part in value for part in _ADDRESS_PARTS[:-1]):  # Address
            for part in _ADDRESS_PARTS:
                texts.extend(_strings(value.get(part)))
        elif isinstance(value.get("text"), str):  # HumanName / Address with text only, CodeableConcept…
            texts.append(value["text"])
    out: list[StringTail] = []
    for text in texts:
        tail = acc.parsed("string", text, _string_tail)
        if tail is not None:
            out.append(tail)
    return out


def to_string(acc: _Acc, param: str, value: Any, grp: int | None) -> None:
    rows = acc.string
    for tail in acc.parsed("strings", value, _string_tails):
        rows[(param, *tail, grp)] = None


# --------------------------------------------------------------------------- date

def _period(value: Mapping[str, Any]) -> DateTail | None:
    start, end = value.get("start"), value.get("end")
    if start is None and end is None:
        return None
    low, high = MIN_TIME, MAX_TIME
    if start is not None:
        rng = _date(start) if isinstance(start, str) else None
        if rng is None:
            return None
        low = rng[0]
    if end is not None:
        rng = _date(end) if isinstance(end, str) else None
        if rng is None:
            return None
        high = rng[1]
    return low, high


def _date_tails(value: Any, acc: _Acc) -> list[DateTail]:
    t = type(value)
    rng: DateTail | None = None
    if t is str:
        rng = _date(value)
    elif t is dict:
        if "start" in value or "end" in value:  # Period
            rng = _period(value)
        elif "event" in value or "repeat" in value:  # Timing: only the outer limits count
            spans = [r for r in map(_date, _strings(value.get("event"))) if r is not None]
            repeat = value.get("repeat")
            if type(repeat) is dict and type(repeat.get("boundsPeriod")) is dict:
                bounds = _period(repeat["boundsPeriod"])
                if bounds is not None:
                    spans.append(bounds)
            if spans:
                rng = (min(s[0] for s in spans), max(s[1] for s in spans))
    elif value is not None and not isinstance(value, bool | int | float | Decimal | list):
        rng = _date(str(value))  # a fhirpathpy date object: its str() is the FHIR text
    return [rng] if rng is not None else []


def to_date(acc: _Acc, param: str, value: Any, grp: int | None) -> None:
    rows = acc.date
    for tail in acc.parsed("date", value, _date_tails):
        rows[(param, *tail, grp)] = None


# --------------------------------------------------------------------------- reference

def _reference_tail(ref: str, resource_types: frozenset[str]) -> ReferenceTail | None:
    parsed = parse_reference(ref)
    if parsed is None:
        return None  # contained (#id): nothing another resource could be found by
    rtype, rid, url = parsed.target_type, parsed.target_id, parsed.url
    if rtype is not None and rtype not in resource_types:
        # looked like Type/id, but Type is no resource type: keep the text as a URL
        rtype = rid = None
        url = ref.partition("|")[0].strip()
    return rtype, rid, url, parsed.version


def _reference_tails(value: Any, acc: _Acc) -> tuple[list[tuple[ReferenceTail, bool]], list[TokenTail]]:
    """The reference rows (each with ``loose``: type taken from a canonical URL or a resource) and identifiers."""
    refs: list[tuple[ReferenceTail, bool]] = []
    identifiers: list[TokenTail] = []
    t = type(value)
    if t is str:  # canonical / uri
        tail = _reference_tail(value, acc.resource_types)
        if tail is not None:
            refs.append((tail, True))
    elif t is dict:
        ref = value.get("reference")
        if isinstance(ref, str):
            tail = _reference_tail(ref, acc.resource_types)
            if tail is not None:
                refs.append((tail, False))
        identifier = value.get("identifier")
        if type(identifier) is dict:
            identifiers.extend(_token_tails(identifier, acc))
        rtype = value.get("resourceType")
        if isinstance(rtype, str) and rtype in acc.resource_types:  # a resource (Bundle.entry[0].resource)
            refs.append(((rtype, _str(value.get("id")), None, None), True))
    return refs, identifiers


def reference_converter(targets: frozenset[str] = frozenset()) -> Converter:
    """The reference converter of a parameter with these target types.

    A type read off a canonical URL (``http://x/ValueSet/y``) or a resource
    (``Bundle.entry[0].resource``) counts only if the parameter targets it: a
    canonical then keeps just its URL, a resource of another type gives no row.
    """

    def to_reference(acc: _Acc, param: str, value: Any, grp: int | None) -> None:
        refs, identifiers = acc.parsed("reference", value, _reference_tails)
        rows = acc.reference
        for tail, loose in refs:
            if loose and targets and tail[0] is not None and tail[0] not in targets:
                if tail[2] is None:
                    continue
                tail = (None, None, tail[2], tail[3])
            rows[(param, *tail, grp)] = None
        if identifiers:
            tokens = acc.token
            name = f"{param}:identifier"
            for token in identifiers:
                tokens[(name, *token, grp)] = None

    return to_reference


to_reference = reference_converter()


# --------------------------------------------------------------------------- quantity / number / uri

def _quantity_end(value: Any) -> float | None:
    if type(value) is dict:
        rng = _number(value.get("value"))
        if rng is not None:
            return rng[0]
    return None


def _quantity_tails(value: Any, acc: _Acc) -> list[QuantityTail]:
    t = type(value)
    if t is dict:
        if "value" in value:  # Quantity, SimpleQuantity, Age, Duration, Count, Distance, Money
            rng = _number(value["value"])
            if rng is None:
                return []
            number, low, high = rng
            lo: float | None = low
            hi: float | None = high
            comparator = value.get("comparator")
            if comparator in ("<", "<="):
                lo = None
            elif comparator in (">", ">="):
                hi = None
            currency = _str(value.get("currency"))
            if currency is not None:
                return [(number, lo, hi, CURRENCY_SYSTEM, currency, None)]
            return [(number, lo, hi, _str(value.get("system")), _str(value.get("code")), _str(value.get("unit")))]
        if "low" in value or "high" in value:  # Range
            low_q, high_q = value.get("low"), value.get("high")
            lo, hi = _quantity_end(low_q), _quantity_end(high_q)
            if lo is None and hi is None:
                return []
            unit_of = low_q if lo is not None else high_q
            assert type(unit_of) is dict
            return [(None, lo, hi, _str(unit_of.get("system")), _str(unit_of.get("code")), _str(unit_of.get("unit")))]
        return []
    if t is int or t is float or t is Decimal:
        rng = _number(value)
        if rng is not None:
            return [(rng[0], rng[1], rng[2], None, None, None)]
    return []


def to_quantity(acc: _Acc, param: str, value: Any, grp: int | None) -> None:
    rows = acc.quantity
    for tail in acc.parsed("quantity", value, _quantity_tails):
        rows[(param, *tail, grp)] = None


def _number_tails(value: Any, acc: _Acc) -> list[NumberTail]:
    if type(value) is dict:  # a Quantity where a number is expected
        value = value.get("value")
    rng = _number(value)
    return [rng] if rng is not None else []


def to_number(acc: _Acc, param: str, value: Any, grp: int | None) -> None:
    rows = acc.number
    for tail in acc.parsed("number", value, _number_tails):
        rows[(param, *tail, grp)] = None


def to_uri(acc: _Acc, param: str, value: Any, grp: int | None) -> None:
    if type(value) is str and value:
        acc.uri[(param, value, grp)] = None


def converter_for(param: SearchParam) -> Converter | None:
    """The converter of a parameter's type (reference converters know the parameter's targets)."""
    if param.type == "reference":
        return reference_converter(frozenset(param.targets))
    return CONVERTERS.get(param.type)


CONVERTERS: dict[str, Converter] = {
    "token": to_token,
    "string": to_string,
    "date": to_date,
    "reference": to_reference,
    "quantity": to_quantity,
    "number": to_number,
    "uri": to_uri,
}


# --------------------------------------------------------------------------- fhirpathpy fallback

_make_node: Callable[..., Any] = ResourceNode.create_node


def _resolve(inputs: list[Any]) -> list[Any]:
    """``resolve()`` for the fallback: a stub resource of the referenced type (enough for ``is X``)."""
    out: list[Any] = []
    for item in inputs:
        ref = item.get("reference") if isinstance(item, dict) else item
        if not isinstance(ref, str):
            continue
        parsed = parse_reference(ref)
        if parsed is not None and parsed.target_type is not None:
            out.append(_make_node({"resourceType": parsed.target_type, "id": parsed.target_id}))
    return out


_FALLBACK_OPTIONS: dict[str, Any] = {"userInvocationTable": {"resolve": {"fn": _resolve, "arity": {0: []}}}}
_RAW_OPTIONS: dict[str, Any] = {**_FALLBACK_OPTIONS, "returnRawData": True}


def compile_fhirpath(expression: str, raw: bool = False) -> Callable[[Any, Mapping[str, Any]], Any]:
    """``expression`` compiled once by fhirpathpy (R4 model, our ``resolve()``): ``evaluate(start, root)``.

    ``raw`` keeps fhirpathpy's typed nodes in the result (a composite's base, so
    that its components are evaluated against typed elements). Raises what
    fhirpathpy raises for an expression it cannot parse.
    """
    compiled = fhirpathpy.compile(expression, model=_fhirpath_models["r4"],
                                  options=_RAW_OPTIONS if raw else _FALLBACK_OPTIONS)

    def evaluate(start: Any, root: Mapping[str, Any]) -> Any:
        return compiled(start, {"resource": root, "rootResource": root})
    return evaluate


def fallback_getter(expression: str, raw: bool = False) -> Getter | None:
    """A getter through fhirpathpy (``None`` if it cannot compile the expression); evaluation errors yield []."""
    try:
        evaluate = compile_fhirpath(expression, raw)
    except Exception:
        log.warning("search expression not indexed, fhirpathpy cannot compile it: %s", expression, exc_info=True)
        return None

    def get(start: Any, root: Mapping[str, Any]) -> list[Any]:
        try:
            result = evaluate(start, root)
        except Exception:  # fhirpathpy raises on data it does not expect; bad data must not fail a write
            log.debug("fhirpathpy evaluation failed for %s", expression, exc_info=True)
            return []
        return list(result) if isinstance(result, list) else [result]
    return get


# --------------------------------------------------------------------------- plans

@dataclass(frozen=True, eq=False)
class _Simple:
    param: str
    getter: Getter
    convert: Converter


@dataclass(frozen=True)
class _Component:
    param: str  # "P$k"
    getter: Getter
    convert: Converter
    wants_node: bool = False  # a fhirpathpy getter gets the base's ResourceNode (keeps its type)


@dataclass(frozen=True, eq=False)
class _CompositeBranch:
    base: Getter
    components: tuple[_Component, ...]


_Entry = _Simple | _CompositeBranch


@dataclass(frozen=True)
class _TypePlan:
    """A resource type's compiled parameters, filed by the top-level JSON keys they start from.

    Most expressions can only match when the resource has a given key
    (``Observation.subject`` needs ``subject``), so extraction runs the entries filed
    under the resource's own keys, the ``multi`` ones whose keys it has any of, and
    the ``always`` ones.
    """

    always: tuple[_Entry, ...] = ()
    by_key: Mapping[str, tuple[_Entry, ...]] = field(default_factory=dict)
    multi: tuple[tuple[frozenset[str], _Entry], ...] = ()

    @classmethod
    def build(cls, entries: list[tuple[_Entry, frozenset[str] | None]]) -> _TypePlan:
        always: list[_Entry] = []
        by_key: dict[str, list[_Entry]] = {}
        multi: list[tuple[frozenset[str], _Entry]] = []
        for entry, keys in entries:
            if keys is None:
                always.append(entry)
            elif len(keys) == 1:
                by_key.setdefault(next(iter(keys)), []).append(entry)
            elif keys:
                multi.append((keys, entry))
        return cls(tuple(always), {k: tuple(v) for k, v in by_key.items()}, tuple(multi))

    def entries_for(self, resource: Mapping[str, Any]) -> list[_Entry]:
        todo = list(self.always)
        by_key = self.by_key
        for key in resource:
            found = by_key.get(key)
            if found:
                todo.extend(found)
        for keys, entry in self.multi:
            for key in keys:
                if key in resource:
                    todo.append(entry)
                    break
        return todo


@dataclass
class CompileStats:
    """How the search parameters compiled: the fast dict walkers, fhirpathpy, or not indexed at all."""

    fast: int = 0
    fallback: int = 0
    skipped: int = 0
    fallback_params: list[str] = field(default_factory=list)
    skipped_params: list[str] = field(default_factory=list)


class IndexExtractor:
    """Extracts :class:`IndexRows` from resources; compiles each resource type's parameters on first use."""

    def __init__(self, registry: SearchRegistry) -> None:
        self.registry = registry
        self._plans: dict[str, _TypePlan] = {}
        self._resource_types = frozenset(registry.resource_types)
        self.stats = CompileStats()
        self._empty = _TypePlan()
        self._lock = threading.Lock()

    # -- compilation

    def _plan(self, resource_type: str) -> _TypePlan:
        plan = self._plans.get(resource_type)
        if plan is None:
            if resource_type not in self._resource_types:
                return self._empty
            with self._lock:  # gthread workers: compile (and count) each type once
                plan = self._plans.get(resource_type)
                if plan is None:
                    plan = self._plans[resource_type] = self._compile_type(resource_type)
        return plan

    def compile_all(self) -> CompileStats:
        """Compile every resource type now (start-up, or to report :attr:`stats`)."""
        for rtype in sorted(self._resource_types):
            self._plan(rtype)
        return self.stats

    def _compile_type(self, resource_type: str) -> _TypePlan:
        entries: list[tuple[_Entry, frozenset[str] | None]] = []
        for param in self.registry.for_type(resource_type).values():
            label = f"{resource_type}.{param.code}"
            compiled: list[tuple[_Entry, frozenset[str] | None]] = []
            fast = False
            if param.type == "composite" and param.expression and param.components:
                compiled, fast = self._compile_composite(param)
            elif param.type in CONVERTERS and param.expression:
                getter, keys, fast = self._compile_simple(param.expression, resource_type)
                convert = converter_for(param)
                if getter is not None and convert is not None:
                    compiled = [(_Simple(param.code, getter, convert), keys)]
            if not compiled:  # _text, _content, _query, near (special), or nothing compiles
                self.stats.skipped += 1
                self.stats.skipped_params.append(label)
                continue
            entries.extend(compiled)
            if fast:
                self.stats.fast += 1
            else:
                self.stats.fallback += 1
                self.stats.fallback_params.append(f"{label}: {param.expression}")
        return _TypePlan.build(entries)

    @staticmethod
    def _compile_simple(expression: str, resource_type: str) -> tuple[Getter | None, frozenset[str] | None, bool]:
        try:
            getter, branches = compile_getter(expression, resource_type)
        except Unsupported:
            return fallback_getter(expression), None, False
        return getter, first_keys(branches), True

    @staticmethod
    def _compile_composite(param: SearchParam) -> tuple[list[tuple[_Entry, frozenset[str] | None]], bool]:
        assert param.expression is not None
        rtype = param.resource_type
        parts: list[tuple[str, str, Converter]] = []
        for k, comp in enumerate(param.components):
            convert = converter_for(comp.param)
            if convert is None:
                return [], False
            parts.append((f"{param.code}${k}", comp.expression, convert))
        try:
            branches = compile_branches(param.expression, rtype)
            out: list[tuple[_Entry, frozenset[str] | None]] = []
            for branch in branches:  # each base branch has its own element type, so its own components
                components: list[_Component] = []
                keys = first_keys([branch])
                for name, expr, convert in parts:
                    getter, comp_branches = compile_getter(expr, rtype, branch.ctx)
                    components.append(_Component(name, getter, convert))
                    comp_keys = first_keys(comp_branches)
                    if not branch.ops and comp_keys is not None:
                        # the base is the resource itself: file it under a component's keys (the last
                        # one, the value, is the most selective: ``valueQuantity`` rather than ``code``)
                        keys = comp_keys
                out.append((_CompositeBranch(build_getter([branch]), tuple(components)), keys))
            return out, True
        except Unsupported:
            pass
        base = fallback_getter(param.expression, raw=True)
        components = []
        for name, expr, convert in parts:
            comp_getter = fallback_getter(expr)
            if comp_getter is None:
                return [], False
            components.append(_Component(name, comp_getter, convert, wants_node=True))
        if base is None:
            return [], False
        return [(_CompositeBranch(base, tuple(components)), None)], False

    # -- extraction

    def extract(self, resource: dict[str, Any]) -> IndexRows:
        """All index rows of ``resource`` (its ``resourceType`` picks the parameters)."""
        acc = _Acc(self._resource_types)
        rtype = resource.get("resourceType") if isinstance(resource, dict) else None
        if not isinstance(rtype, str):
            return acc.rows()
        for entry in self._plan(rtype).entries_for(resource):
            if type(entry) is _Simple:
                self._extract_simple(acc, entry, resource)
            else:
                assert isinstance(entry, _CompositeBranch)
                self._extract_composite(acc, entry, resource)
        return acc.rows()

    @staticmethod
    def _extract_simple(acc: _Acc, entry: _Simple, resource: dict[str, Any]) -> None:
        try:
            found = entry.getter(resource, resource)
        except Exception:  # pragma: no cover - getters do not raise; belt and braces for a write path
            log.debug("index getter failed for %s", entry.param, exc_info=True)
            return
        if found:
            convert, param = entry.convert, entry.param
            for value in found:
                try:
                    convert(acc, param, value, None)
                except Exception:
                    log.debug("skipped an unconvertible value for %s", param, exc_info=True)

    @staticmethod
    def _extract_composite(acc: _Acc, comp: _CompositeBranch, resource: dict[str, Any]) -> None:
        try:
            elements = comp.base(resource, resource)
        except Exception:  # pragma: no cover
            return
        for element in elements:
            start = element.data if isinstance(element, ResourceNode) else element
            matched: list[tuple[_Component, list[Any]]] = []
            for component in comp.components:
                try:
                    found = component.getter(element if component.wants_node else start, resource)
                except Exception:  # pragma: no cover
                    found = []
                if not found:
                    break
                matched.append((component, found))
            else:
                acc.grp += 1
                grp = acc.grp
                for component, found in matched:
                    for value in found:
                        try:
                            component.convert(acc, component.param, value, grp)
                        except Exception:
                            log.debug("skipped an unconvertible composite value", exc_info=True)

