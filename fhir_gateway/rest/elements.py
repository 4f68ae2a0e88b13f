"""``_summary`` and ``_elements``: return a subset of a resource (pure functions, no I/O).

* https://hl7.org/fhir/R4/search.html#summary: ``true`` keeps the top-level elements
  marked ``isSummary``; ``text`` keeps ``text`` and the mandatory elements; ``data``
  drops ``text``; ``false`` returns everything.
* https://hl7.org/fhir/R4/search.html#elements: keep the listed top-level elements
  (``value`` selects ``valueQuantity``, ``valueString``, …; ``Patient.name`` is
  accepted for ``name``, and entries for other resource types are ignored).

Every subset keeps ``resourceType``, ``id``, ``meta`` and the mandatory (min >= 1)
elements, with their ``_element`` extension siblings, and a resource that lost any
element is tagged ``SUBSETTED`` in ``meta.tag``. The input is never mutated: the
result shares unchanged element values with it, so treat both as read-only or copy.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from typing import Any, Literal

from fhir_gateway.definitions import resource_types
from fhir_gateway.errors import InvalidRequest

SummaryMode = Literal["true", "text", "data", "false"]
SUBSETTED_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
SUBSETTED = {"system": SUBSETTED_SYSTEM, "code": "SUBSETTED", "display": "subsetted"}
_ALWAYS = frozenset({"resourceType", "id", "meta"})


@cache
def _choice_bases(resource_type: str) -> dict[str, str]:
    """JSON name of every choice variant -> its base name (``valueQuantity`` -> ``value``)."""
    info = resource_types().get(resource_type, {})
    return {base + t[0].upper() + t[1:]: base
            for base, kinds in info.get("choices", {}).items() for t in kinds}


@cache
def _names(resource_type: str, key: str) -> frozenset[str]:
    info = resource_types().get(resource_type, {})
    return frozenset(info.get(key, ()))


def _base_name(resource_type: str, key: str) -> str:
    name = key[1:] if key.startswith("_") else key
    return _choice_bases(resource_type).get(name, name)


def _subset(resource: dict[str, Any], keep: Callable[[str], bool]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    dropped = False
    for key, value in resource.items():
        if keep(key):
            out[key] = value
        else:
            dropped = True
    return _tag_subsetted(out) if dropped else out


def _tag_subsetted(resource: dict[str, Any]) -> dict[str, Any]:
    """``resource`` (already a copy) with ``SUBSETTED`` in a new ``meta.tag``."""
    meta = resource.get("meta")
    meta = dict(meta) if isinstance(meta, dict) else {}
    tags = meta.get("tag")
    tags = list(tags) if isinstance(tags, list) else []
    if not any(isinstance(t, dict) and t.get("system") == SUBSETTED_SYSTEM and t.get("code") == "SUBSETTED"
               for t in tags):
        tags.append(dict(SUBSETTED))
    meta["tag"] = tags
    resource["meta"] = meta
    return resource


def _keeper(resource_type: str, wanted: Iterable[str]) -> Callable[[str], bool]:
    """Keep ``resourceType``, ``id``, ``meta``, the mandatory elements and ``wanted`` (base names)."""
    names = _ALWAYS | _names(resource_type, "required") | frozenset(wanted)
    return lambda key: key in _ALWAYS or _base_name(resource_type, key) in names


def apply_summary(resource: dict[str, Any], mode: SummaryMode) -> dict[str, Any]:
    """The resource as ``_summary=mode`` returns it (a new dict; ``resource`` is not changed)."""
    rtype = str(resource.get("resourceType", ""))
    if mode == "false":
        return dict(resource)
    if mode == "true":
        return _subset(resource, _keeper(rtype, _names(rtype, "summary")))
    if mode == "text":
        return _subset(resource, _keeper(rtype, ("text",)))
    if mode == "data":
        return _subset(resource, lambda key: key != "text")
    raise InvalidRequest("_summary must be true, text, data or false here", expression=["_summary"])


def apply_elements(resource: dict[str, Any], elements: list[str]) -> dict[str, Any]:
    """The resource as ``_elements=…`` returns it (a new dict; ``resource`` is not changed)."""
    rtype = str(resource.get("resourceType", ""))
    wanted: set[str] = set()
    for entry in elements:
        entry = entry.strip()
        if "." in entry:
            owner, _, entry = entry.partition(".")
            if owner != rtype:
                continue  # an element of another resource type (e.g. in a search with _include)
            entry = entry.split(".", 1)[0]
        if entry:
            wanted.add(_base_name(rtype, entry))
    return _subset(resource, _keeper(rtype, wanted))
