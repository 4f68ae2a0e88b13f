"""FHIR R4 JSON format rules, checked against the R4 element table.

Walks a parsed resource and reports, with the FHIRPath of the element:

* unknown elements, and ``resourceType`` missing or not an R4 resource type
  (also for contained and Bundle/Parameters resources);
* JSON shape: arrays exactly where max cardinality > 1, objects for complex types,
  no ``null`` (except as the placeholder in a primitive array that lines a value up
  with its ``_element`` extension), no empty objects, arrays or strings
  (https://hl7.org/fhir/R4/json.html);
* primitive values: JSON type (``true``/``false``, JSON numbers for integers and
  decimals, strings otherwise), the R4 regex of the type, integer ranges, calendar
  validity of dates (https://hl7.org/fhir/R4/datatypes.html#primitive);
* cardinality: required elements (``min`` >= 1, satisfied by a value or by an
  ``_element`` extension), at most one type of a choice element.

The walk is pure: it never changes the resource, and diagnostics never quote a value.
"""
from __future__ import annotations

import calendar
import math
import re
from collections.abc import Callable
from functools import cache
from typing import Any

from fhir_gateway.validation.definitions import (
    COMPLEX,
    PRIMITIVE,
    RESOURCE,
    ElementSpec,
    PrimitiveSpec,
    R4Definitions,
    TypeSpec,
    r4_definitions,
)
from fhir_gateway.validation.issues import Issue

MAX_STRING = 1024 * 1024  # "strings SHALL NOT exceed 1MB"
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
_INT_LOW = {"integer": INT_MIN, "unsignedInt": 0, "positiveInt": 1}
_SAFE_KEY = re.compile(r"_?[A-Za-z][A-Za-z0-9_]{0,63}", re.ASCII)
_BASE64 = re.compile(r"[A-Za-z0-9+/=]+", re.ASCII)
_WS = re.compile(r"\s+", re.ASCII)
_JSON_KIND_TEXT = {
    "boolean": "a JSON boolean (true or false)",
    "integer": "a JSON number without a fraction",
    "decimal": "a JSON number",
    "string": "a JSON string",
}

# A primitive checker returns None when the value is fine, else what is wrong with it.
Checker = Callable[[Any], "str | None"]


def is_safe_key(key: str) -> bool:
    """Whether an unknown element's name may appear in a diagnostic.

    Keys are client-controlled; anything that does not look like an element name
    (free text, very long keys) could carry data, so it is not echoed.
    """
    return _SAFE_KEY.fullmatch(key) is not None


def _calendar_ok(value: str) -> bool:
    if len(value) < 10:
        return True
    year, month, day = int(value[0:4]), int(value[5:7]), int(value[8:10])
    return day <= calendar.monthrange(year, month)[1]


def _make_checker(spec: PrimitiveSpec) -> Checker:
    kind, name, pattern = spec.json_kind, spec.name, spec.pattern
    wrong_type = "must be " + _JSON_KIND_TEXT[kind]
    bad_format = f"is not a valid FHIR {name}"
    if kind == "boolean":
        return lambda v: None if type(v) is bool else wrong_type
    if kind == "integer":
        low = _INT_LOW[name]
        out_of_range = f"is out of range for FHIR {name} ({low}..{INT_MAX})"

        def check_integer(v: Any) -> str | None:
            if type(v) is not int:
                return wrong_type
            return None if low <= v <= INT_MAX else out_of_range
        return check_integer
    if kind == "decimal":
        def check_decimal(v: Any) -> str | None:
            if type(v) is int:
                return None
            if type(v) is float:
                return None if math.isfinite(v) else bad_format
            return wrong_type
        return check_decimal
    if name == "base64Binary":
        def check_base64(v: Any) -> str | None:
            if type(v) is not str:
                return wrong_type
            # The R4 regex ``(\s*([0-9a-zA-Z\+/=]){4}\s*)+`` backtracks badly on large
            # values; this is the same check (whitespace may also split a 4-char group).
            compact = _WS.sub("", v)
            if not compact or len(compact) % 4 or not _BASE64.fullmatch(compact):
                return bad_format
            return None
        return check_base64
    dated = name in ("date", "dateTime", "instant")

    def check_string(v: Any) -> str | None:
        if type(v) is not str:
            return wrong_type
        if not v:
            return "must not be an empty string"
        if len(v) > MAX_STRING:
            return "exceeds the 1 MB limit of FHIR strings"
        if pattern is not None and pattern.fullmatch(v) is None:
            return bad_format
        if dated and not _calendar_ok(v):
            return "is not a valid calendar date"
        return None
    return check_string


@cache
def _checkers() -> dict[str, Checker]:
    return {name: _make_checker(spec) for name, spec in r4_definitions().primitives.items()}


def _code(problem: str) -> str:
    """IssueType of a primitive problem: the wrong JSON type is ``structure``, a bad value ``value``."""
    return "structure" if problem.startswith("must be a JSON") else "value"


def _check_xhtml(v: Any) -> str | None:
    if type(v) is not str:
        return "must be a JSON string"
    if not v.lstrip().startswith("<div"):
        return "must be an XHTML <div> element"
    return None


class JsonFormatWalker:
    """One walk over one resource.

    ``issues`` collects the findings; ``nested`` lists every inner resource (contained,
    Bundle entries, Parameters) with its type, "" when the type is missing or unknown.
    """

    __slots__ = ("checkers", "defs", "element_type", "issues", "nested")

    def __init__(self, defs: R4Definitions | None = None) -> None:
        self.defs = defs or r4_definitions()
        self.checkers = _checkers()
        self.element_type = self.defs.types["Element"]
        self.issues: list[Issue] = []
        self.nested: list[tuple[dict[str, Any], str]] = []

    def issue(self, code: str, path: str | None, problem: str) -> None:
        self.issues.append(Issue(code, f"{path}: {problem}" if path else problem, path))

    # -- resources ---------------------------------------------------------------------------

    def resource(self, obj: Any, path: str | None = None) -> str | None:
        """Check a resource (top level when ``path`` is None); return its type when it is known."""
        if not isinstance(obj, dict):
            self.issue("structure", path, "a resource must be a JSON object")
            return None
        rtype = obj.get("resourceType")
        if rtype is None:
            self.issue("structure", path, "resourceType is missing")
            if path is not None:
                self.nested.append((obj, ""))
            return None
        if not isinstance(rtype, str) or rtype not in self.defs.resources:
            self.issue("structure", path, "resourceType is not a FHIR R4 resource type")
            if path is not None:
                self.nested.append((obj, ""))
            return None
        if path is not None:
            self.nested.append((obj, rtype))
        self.object(obj, self.defs.types[rtype], path or rtype, True)
        return rtype

    # -- objects -----------------------------------------------------------------------------

    def object(self, obj: dict[str, Any], tspec: TypeSpec, path: str, is_resource: bool = False) -> None:
        elements = tspec.elements
        choices: dict[str, str] | None = None
        for key, value in obj.items():
            spec = elements.get(key)
            if spec is None:
                if key[:1] == "_":
                    spec = elements.get(key[1:])
                    if spec is not None and spec.kind == PRIMITIVE:
                        if spec.choice:
                            choices = self._choice(choices, spec, path)
                        self._primitive_extension(obj, spec, value, path)
                        continue
                elif is_resource and key == "resourceType":
                    continue
                if is_safe_key(key):
                    self.issue("structure", f"{path}.{key}", f"unknown element (not defined for FHIR R4 {tspec.name})")
                else:
                    self.issue("structure", path, "unknown element (its name is not shown: it is not an element name)")
                continue
            if spec.choice:
                choices = self._choice(choices, spec, path)
            if value is None:  # null only pads primitive arrays, never stands for a whole element
                self.issue("structure", f"{path}.{spec.segment}", "must not be null")
                continue
            if spec.many:
                if type(value) is not list:
                    self.issue("structure", f"{path}.{spec.segment}",
                               "must be a JSON array (the element repeats)")
                elif not value:
                    self.issue("structure", f"{path}.{spec.segment}", "must not be an empty array")
                elif spec.kind == PRIMITIVE:
                    self._primitive_array(obj, spec, value, path)
                else:
                    base = f"{path}.{spec.segment}"
                    for i, item in enumerate(value):
                        self._value(item, spec, f"{base}[{i}]")
            elif type(value) is list:
                self.issue("structure", f"{path}.{spec.segment}",
                           "must not be a JSON array (the element does not repeat)")
            elif spec.kind == PRIMITIVE:
                problem = self.checkers[spec.type](value)
                if problem is not None:
                    self.issue(_code(problem), f"{path}.{spec.segment}", problem)
            else:
                self._value(value, spec, f"{path}.{spec.segment}")
        for label, names in tspec.required:
            for name in names:
                if name in obj or ("_" + name) in obj:
                    break
            else:
                self.issue("required", f"{path}.{label}", "required element is missing")

    def _choice(self, choices: dict[str, str] | None, spec: ElementSpec, path: str) -> dict[str, str]:
        if choices is None:
            choices = {}
        seen = choices.get(spec.choice)
        if seen is None:
            choices[spec.choice] = spec.name
        elif seen != spec.name:
            choices[spec.choice] = spec.name
            self.issue("structure", f"{path}.{spec.choice}",
                       f"only one type of {spec.choice}[x] may be present")
        return choices

    def _value(self, value: Any, spec: ElementSpec, path: str) -> None:
        """A complex, resource or xhtml value (or one item of an array of them)."""
        kind = spec.kind
        if kind == COMPLEX:
            if type(value) is not dict:
                self.issue("structure", path, "must be a JSON object" if value is not None else "must not be null")
            elif not value:
                self.issue("structure", path, "must not be an empty object")
            else:
                self.object(value, self.defs.types[spec.type], path)
        elif kind == RESOURCE:
            self.resource(value, path)
        else:
            problem = _check_xhtml(value)
            if problem is not None:
                self.issue(_code(problem), path, problem)

    # -- primitives and their ``_element`` siblings ---------------------------------------------

    def _primitive_array(self, obj: dict[str, Any], spec: ElementSpec, values: list[Any], path: str) -> None:
        check = self.checkers[spec.type]
        extensions = obj.get("_" + spec.name)
        if not isinstance(extensions, list):
            extensions = None
        for i, item in enumerate(values):
            if item is None:
                if extensions is None or i >= len(extensions):
                    self.issue("structure", f"{path}.{spec.segment}[{i}]",
                               "must not be null (null only pads a value that has an extension)")
                continue
            problem = check(item)
            if problem is not None:
                self.issue(_code(problem), f"{path}.{spec.segment}[{i}]", problem)

    def _primitive_extension(self, obj: dict[str, Any], spec: ElementSpec, value: Any, path: str) -> None:
        """``_birthDate`` / ``_given``: the id and extensions of a primitive, as an Element."""
        where = f"{path}.{spec.segment}"
        if not spec.many:
            if type(value) is not dict:
                self.issue("structure", where, "the extension sibling (_element) must be a JSON object")
            elif not value:
                self.issue("structure", where, "the extension sibling (_element) must not be empty")
            else:
                self.object(value, self.element_type, where)
            return
        if type(value) is not list or not value:
            self.issue("structure", where, "the extension sibling (_element) must be a non-empty JSON array")
            return
        values = obj.get(spec.name)
        if isinstance(values, list) and len(values) != len(value):
            self.issue("structure", where, "the extension sibling (_element) must have one entry per value")
        for i, item in enumerate(value):
            if item is None:
                if not isinstance(values, list) or i >= len(values) or values[i] is None:
                    self.issue("structure", f"{where}[{i}]", "a value and its extension cannot both be null")
            elif type(item) is not dict or not item:
                self.issue("structure", f"{where}[{i}]", "must be a non-empty JSON object or null")
            else:
                self.object(item, self.element_type, f"{where}[{i}]")


def check_json_format(resource: Any) -> tuple[list[Issue], str | None, list[tuple[dict[str, Any], str]]]:
    """Walk one resource: its issues, its resource type (None if unknown) and its inner resources."""
    walker = JsonFormatWalker()
    rtype = walker.resource(resource)
    return walker.issues, rtype, walker.nested
