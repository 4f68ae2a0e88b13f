"""The FHIR R4 (4.0.1) element table the structure checks walk.

Loaded from ``r4_structure.json.gz``, which ``tools/build_validation_data.py``
distils from the spec's StructureDefinitions (``profiles-resources.json`` and
``profiles-types.json``, CC0). Every resource, complex datatype and backbone
element (named by its path, ``Patient.contact``) maps its JSON element names to
their type and cardinality; choice elements (``value[x]``) appear once per
allowed type under their JSON name (``valueQuantity``).
See https://hl7.org/fhir/R4/elementdefinition.html and https://hl7.org/fhir/R4/json.html.
"""
from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

_DATA = Path(__file__).resolve().parent / "r4_structure.json.gz"

PRIMITIVE = 0
COMPLEX = 1
RESOURCE = 2
XHTML = 3


@dataclass(frozen=True, slots=True)
class ElementSpec:
    """One element of a type, under its JSON name."""

    name: str
    type: str
    min: int
    many: bool
    choice: str  # the ``[x]`` base name for choice elements, else ""
    kind: int  # PRIMITIVE | COMPLEX | RESOURCE | XHTML
    segment: str  # how the element is named in a FHIRPath expression: ``value.ofType(Quantity)``


@dataclass(frozen=True, slots=True)
class TypeSpec:
    """A resource, complex datatype or backbone element."""

    name: str
    elements: dict[str, ElementSpec]
    # (FHIRPath name, JSON names that satisfy it) for every element with min >= 1
    required: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True, slots=True)
class PrimitiveSpec:
    name: str
    json_kind: str  # boolean | integer | decimal | string
    pattern: re.Pattern[str] | None


@dataclass(frozen=True, slots=True)
class R4Definitions:
    resources: frozenset[str]
    types: dict[str, TypeSpec]
    primitives: dict[str, PrimitiveSpec]


def _element(name: str, raw: list[Any], primitives: dict[str, Any]) -> ElementSpec:
    type_code, minimum, many, choice = raw
    if type_code == "Resource":
        kind = RESOURCE
    elif type_code == "xhtml":
        kind = XHTML
    elif type_code in primitives:
        kind = PRIMITIVE
    else:
        kind = COMPLEX
    if choice:
        json_type = name[len(choice):]
        # FHIRPath names primitive types in lower camel case (``ofType(dateTime)``)
        type_name = json_type[0].lower() + json_type[1:] if type_code in primitives else json_type
        segment = f"{choice}.ofType({type_name})"
    else:
        segment = name
    return ElementSpec(name, type_code, int(minimum), bool(many), choice, kind, segment)


def _type(name: str, raw: dict[str, list[Any]], primitives: dict[str, Any]) -> TypeSpec:
    elements = {el: _element(el, spec, primitives) for el, spec in sorted(raw.items())}
    groups: dict[str, list[str]] = {}
    for el in elements.values():
        if el.min >= 1:
            groups.setdefault(el.choice or el.name, []).append(el.name)
    required = tuple((label, tuple(names)) for label, names in groups.items())
    return TypeSpec(name, elements, required)


@cache
def r4_definitions() -> R4Definitions:
    with gzip.open(_DATA, "rt", encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    raw_primitives: dict[str, list[Any]] = data["primitives"]
    primitives = {
        # FHIR regexes are implicitly anchored and use ASCII (XML Schema) character classes
        name: PrimitiveSpec(name, kind, re.compile(regex, re.ASCII) if regex else None)
        for name, (kind, regex) in raw_primitives.items()
    }
    types = {name: _type(name, raw, raw_primitives) for name, raw in data["types"].items()}
    return R4Definitions(frozenset(data["resources"]), types, primitives)
