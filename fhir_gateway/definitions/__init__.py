"""FHIR R4 4.0.1 and US Core 6.1.0 definitions, distilled by ``tools/build_definitions.py`` (CC0 sources)."""
from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent


@cache
def search_parameter_definitions() -> list[dict[str, Any]]:
    """The R4 SearchParameters plus the US Core 6.1.0 ones that R4 lacks."""
    with gzip.open(_HERE / "search-parameters.json.gz", "rt", encoding="utf-8") as fh:
        data: list[dict[str, Any]] = json.load(fh)
    return data


@cache
def resource_types() -> dict[str, dict[str, Any]]:
    """Every concrete R4 resource type: its summary, required and choice (``[x]``) elements."""
    data: dict[str, dict[str, Any]] = json.loads((_HERE / "resource-types.json").read_text())
    return data


@cache
def patient_compartment() -> dict[str, list[str]]:
    """Resource type -> search parameters linking it to a Patient (the R4 CompartmentDefinition)."""
    data: dict[str, list[str]] = json.loads((_HERE / "compartment-patient.json").read_text())
    return data


@cache
def us_core_profiles() -> dict[str, Any]:
    """US Core 6.1.0 server CapabilityStatement: its canonical URL and supported profiles per type."""
    data: dict[str, Any] = json.loads((_HERE / "us-core-profiles.json").read_text())
    return data
