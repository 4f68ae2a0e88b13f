"""v2 datatype → FHIR datatype converters written in Python.

The engine prefers a converter registered here over the IG-derived datatype map of
the same key (``CWE[CodeableConcept]``): these are the datatypes whose IG rows need
logic the tables cannot state (system-name resolution, XTN value assembly, SN parsing,
the PL location hierarchy). Everything else runs from ``maps/ig_maps.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.parser.message import Value

Converter = Callable[[Value, Context, "str | None"], Any]
CONVERTERS: dict[str, Converter] = {}


def converter(*keys: str) -> Callable[[Converter], Converter]:
    """Register ``fn`` for the given IG datatype-map keys."""

    def register(fn: Converter) -> Converter:
        for key in keys:
            CONVERTERS[key] = fn
        return fn

    return register


def _load() -> None:
    from mappers.hl7v2.datatypes import (  # noqa: F401
        address,
        attachment,
        coded,
        identifiers,
        location,
        quantity,
        telecom,
    )


_load()
