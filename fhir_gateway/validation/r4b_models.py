"""The fhir.resources R4B models as a second structure check, kept to what R4 4.0.1 allows.

fhir.resources 8.3 has no plain R4 package; its R4B (4.3.0) models are the nearest.
R4B dropped some R4 resource types and reshaped a few elements, so:

* :func:`differences_for` compares the R4 element table with the R4B models, element by
  element (types, cardinality, required-ness, presence). It is computed from the
  installed models, so an upgrade of fhir.resources cannot leave it stale;
  ``docs/r4-r4b-differences.md`` lists what it finds for 8.3.
* :func:`model_issues` validates a resource with its R4B model and turns each pydantic
  error into an :class:`Issue` with a FHIRPath expression, dropping the errors that sit
  on an element where R4B differs from R4 in a way that can reject valid R4 content:
  there the R4 walk (``json_format``) is the judge.
* Resources of a type R4B dropped (and inner resources of such types) are not given
  to the models at all.

Diagnostics come from fixed texts per pydantic error type, never from pydantic's
message, which may quote the input.
"""
from __future__ import annotations

import logging
import types
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir_core.constraints import FHIR_PRIMITIVES_MAPS
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from fhir_core.types import FhirBase
from pydantic import ValidationError

from fhir_gateway.validation.definitions import COMPLEX, PRIMITIVE, RESOURCE, TypeSpec, r4_definitions
from fhir_gateway.validation.issues import Issue
from fhir_gateway.validation.json_format import is_safe_key

log = logging.getLogger(__name__)

# Stand-in for an inner resource the R4B models cannot take (an R4-only type): a
# resource with no required elements keeps list positions, so error paths stay right.
_PLACEHOLDER: dict[str, Any] = {"resourceType": "Parameters"}
# Quantity profiles: R4B types these elements as plain Quantity (more lenient, not stricter)
_PROFILE_BASE = {"SimpleQuantity": "Quantity", "MoneyQuantity": "Quantity"}


@dataclass(frozen=True, slots=True, order=True)
class Difference:
    """One place where the R4B models disagree with R4 4.0.1.

    ``owner`` is the R4 type or backbone path (``Extension``, ``Evidence``,
    ``EvidenceVariable.characteristic``); ``element`` its JSON element name ("" for
    a whole resource type). ``stricter`` is true when R4B can reject valid R4 there.
    """

    owner: str
    element: str
    kind: str  # type-dropped | element-dropped | element-added | required | cardinality | type
    stricter: bool
    detail: str


@cache
def model_class(resource_type: str) -> type[FHIRAbstractModel] | None:
    """The R4B model of an R4 resource type, or None when R4B dropped the type."""
    try:
        return get_fhir_model_class(resource_type)
    except ValueError:
        return None


# -- comparing the R4 table with the R4B models ------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ModelField:
    type_name: str  # primitive name, or the model's __resource_type__
    model: type[FHIRAbstractModel] | None
    required: bool
    many: bool


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    def strip_optional(ann: Any) -> Any:
        if typing.get_origin(ann) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(ann) if a is not type(None)]
            if len(args) == 1:
                return args[0]
        return ann

    ann = strip_optional(annotation)
    if typing.get_origin(ann) is list:
        return strip_optional(typing.get_args(ann)[0]), True
    return ann, False


def _model_fields(cls: type[FHIRAbstractModel]) -> dict[str, _ModelField]:
    required_primitives = {name for name, _ in cls.model_construct().get_required_fields()}
    fields: dict[str, _ModelField] = {}
    for name, info in cls.model_fields.items():
        extra = info.json_schema_extra
        if not isinstance(extra, dict) or not extra.get("element_property"):
            continue
        alias = info.alias or name
        ann, many = _unwrap(info.annotation)
        model: type[FHIRAbstractModel] | None = None
        if isinstance(ann, type) and issubclass(ann, FhirBase):
            model = ann.get_model_klass()
            type_name = model.get_resource_type()
        else:
            try:
                type_name = FHIR_PRIMITIVES_MAPS.get(ann) or repr(ann)
            except TypeError:  # an unhashable annotation
                type_name = repr(ann)
        choice_required = extra.get("one_of_many_required") is True
        required = info.is_required() or alias in required_primitives or choice_required
        fields[alias] = _ModelField(type_name, model, required, many)
    return fields


def _model_type_name(r4_type: str) -> str:
    """The R4B model name an R4 type should map to: ``Patient.contact`` -> ``PatientContact``."""
    r4_type = _PROFILE_BASE.get(r4_type, r4_type)
    return "".join(part[0].upper() + part[1:] for part in r4_type.split("."))


def _compare(tspec: TypeSpec, cls: type[FHIRAbstractModel], found: set[Difference],
             seen: set[tuple[str, type[FHIRAbstractModel]]]) -> None:
    """Add the differences between an R4 type and its R4B model, recursing into complex elements."""
    if (tspec.name, cls) in seen:
        return
    seen.add((tspec.name, cls))
    types = r4_definitions().types
    fields = _model_fields(cls)
    owner = tspec.name
    required_choices = {label for label, names in tspec.required if len(names) > 1 or names[0] != label}
    for name, spec in tspec.elements.items():
        field = fields.get(name)
        if field is None:
            found.add(Difference(owner, name, "element-dropped", True, f"R4 {spec.type} element not in R4B"))
            continue
        if spec.many != field.many:
            found.add(Difference(owner, name, "cardinality", True,
                                 f"R4 max {'*' if spec.many else '1'}, R4B max {'*' if field.many else '1'}"))
        r4_required = spec.min >= 1 or spec.choice in required_choices
        if r4_required != field.required:
            found.add(Difference(owner, name, "required", field.required,
                                 f"R4 min {1 if r4_required else 0}, R4B min {1 if field.required else 0}"))
        if spec.kind == PRIMITIVE:
            if field.model is not None or field.type_name != spec.type:
                found.add(Difference(owner, name, "type", True, f"R4 {spec.type}, R4B {field.type_name}"))
        elif spec.kind == RESOURCE:
            if field.type_name != "Resource":
                found.add(Difference(owner, name, "type", True, f"R4 Resource, R4B {field.type_name}"))
        elif spec.kind == COMPLEX:
            if field.model is None or field.type_name != _model_type_name(spec.type):
                found.add(Difference(owner, name, "type", True, f"R4 {spec.type}, R4B {field.type_name}"))
            else:
                _compare(types[spec.type], field.model, found, seen)
    for name, field in fields.items():
        if name not in tspec.elements:
            # an R4B-only element is harmless (the R4 walk reports it) unless R4B requires it
            found.add(Difference(owner, name, "element-added", field.required,
                                 f"R4B {field.type_name} element not in R4" + (", required" if field.required else "")))


@cache
def differences_for(resource_type: str) -> tuple[Difference, ...]:
    """The R4/R4B differences reachable from one R4 resource type (its elements and datatypes)."""
    cls = model_class(resource_type)
    if cls is None:
        return (Difference(resource_type, "", "type-dropped", True, "resource type not in R4B"),)
    found: set[Difference] = set()
    _compare(r4_definitions().types[resource_type], cls, found, set())
    return tuple(sorted(found))


def differences() -> tuple[Difference, ...]:
    """Every R4/R4B difference reachable from any R4 resource type (imports every R4B model: slow)."""
    every: set[Difference] = set()
    for rtype in sorted(r4_definitions().resources):
        every.update(differences_for(rtype))
    return tuple(sorted(every))


@cache
def _relaxed(resource_type: str) -> frozenset[tuple[str, str]]:
    """(R4 owner, element) pairs where the R4B model of this type may reject valid R4 content."""
    return frozenset((d.owner, d.element) for d in differences_for(resource_type) if d.stricter and d.element)


# -- validating with the models --------------------------------------------------------------

# pydantic error type -> (IssueType, what is wrong); anything else gets a generic text
_PROBLEMS: dict[str, tuple[str, str]] = {
    "extra_forbidden": ("structure", "unknown element"),
    "missing": ("required", "required element is missing"),
    "model_field_validation.missing": ("required", "required element is missing"),
    "list_type": ("structure", "must be a JSON array without null items"),
    "model_type": ("structure", "must be a JSON object"),
    "model_attributes_type": ("structure", "must be a JSON object"),
    "dict_type": ("structure", "must be a JSON object"),
    "model_validation_format": ("structure", "is not a valid FHIR structure here"),
    "fhir-validation-wrong-resource-type": ("invalid", "resourceType does not match"),
    "bool_type": ("structure", "must be a JSON boolean (true or false)"),
    "bool_parsing": ("structure", "must be a JSON boolean (true or false)"),
    "int_type": ("structure", "must be a JSON number without a fraction"),
    "int_parsing": ("structure", "must be a JSON number without a fraction"),
    "int_from_float": ("structure", "must be a JSON number without a fraction"),
    "string_type": ("structure", "must be a JSON string"),
    "string_pattern_mismatch": ("value", "does not match the format of its FHIR type"),
    "string_too_short": ("value", "must not be empty"),
    "string_too_long": ("value", "is too long for its FHIR type"),
    "greater_than_equal": ("value", "is out of range for its FHIR type"),
    "less_than_equal": ("value", "is out of range for its FHIR type"),
    "value_error": ("value", "is not a valid value of its FHIR type"),
}


def _problem(error_type: str) -> tuple[str, str]:
    known = _PROBLEMS.get(error_type)
    if known is not None:
        return known
    if error_type.startswith(("date", "time")):
        return "value", "is not a valid date or time"
    if error_type.startswith(("decimal", "float")):
        return "structure", "must be a JSON number"
    return "value", f"is not valid ({error_type})"


def resolve_location(resource: dict[str, Any], resource_type: str,
                     loc: tuple[int | str, ...]) -> tuple[str, list[tuple[str, str]], list[str]]:
    """A pydantic error location as a FHIRPath expression, the (R4 owner, element) pairs it
    crosses and the resource types it passes through (the outer one first)."""
    defs = r4_definitions()
    path = resource_type
    pairs: list[tuple[str, str]] = []
    resource_types = [resource_type]
    tspec: TypeSpec | None = defs.types[resource_type]
    pending_resource = False
    node: Any = resource
    for seg in loc:
        if isinstance(seg, int):
            path += f"[{seg}]"
            node = node[seg] if isinstance(node, list) and 0 <= seg < len(node) else None
            continue
        if pending_resource:
            rtype = node.get("resourceType") if isinstance(node, dict) else None
            tspec = defs.types.get(rtype) if isinstance(rtype, str) and rtype in defs.resources else None
            if tspec is not None:
                resource_types.append(tspec.name)
            pending_resource = False
        if tspec is None:
            # below a primitive, pydantic adds its own location parts (union members etc.)
            break
        name = seg[1:] if seg.startswith("_") else seg
        if seg in ("resource_type", "resourceType", "root"):  # pydantic's names for the object itself
            break
        spec = tspec.elements.get(name)
        pairs.append((tspec.name, name))
        if spec is None or (seg != name and spec.kind != PRIMITIVE):
            if is_safe_key(seg):
                path += "." + seg
            break
        path += "." + spec.segment
        node = node.get(seg) if isinstance(node, dict) else None
        if seg.startswith("_"):
            tspec = defs.types["Element"]
        elif spec.kind == COMPLEX:
            tspec = defs.types[spec.type]
        elif spec.kind == RESOURCE:
            tspec, pending_resource = None, True
        else:
            tspec = None
    return path, pairs, resource_types


def _pruned(value: Any, targets: set[int]) -> Any:
    if isinstance(value, dict):
        if id(value) in targets:
            return dict(_PLACEHOLDER)
        return {k: _pruned(v, targets) for k, v in value.items()}
    if isinstance(value, list):
        return [_pruned(v, targets) for v in value]
    return value


def model_issues(resource: dict[str, Any], resource_type: str,
                 nested: list[tuple[dict[str, Any], str]]) -> list[Issue]:
    """Validate with the R4B model; the issues R4 agrees with. ``nested``: the inner resources and their types."""
    cls = model_class(resource_type)
    if cls is None:
        return []
    foreign = {id(obj) for obj, rtype in nested if not rtype or model_class(rtype) is None}
    data = _pruned(resource, foreign) if foreign else resource
    try:
        cls.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
    except Exception as exc:  # a model bug must not turn a client error into a 500
        log.warning("R4B model check of a %s failed internally (%s); R4 checks only",
                    resource_type, type(exc).__name__)
        return []
    else:
        return []
    issues: list[Issue] = []
    for error in errors:
        expression, pairs, crossed = resolve_location(resource, resource_type, tuple(error["loc"]))
        if any(pair in _relaxed(rtype) for rtype in crossed for pair in pairs):
            continue
        code, problem = _problem(error["type"])
        issues.append(Issue(code, f"{expression}: {problem}", expression))
    return issues
