"""Apply ``_summary`` and ``_elements`` to a single returned resource (read, vread)."""
from __future__ import annotations

from typing import Any

from fhir_gateway.errors import InvalidRequest
from fhir_gateway.rest.messages import FhirRequest

SUMMARY_MODES = ("true", "false", "text", "data", "count")


def shape_resource(resource: dict[str, Any], req: FhirRequest) -> dict[str, Any]:
    summary = req.param("_summary")
    elements = req.param("_elements")
    if summary is not None:
        if summary not in SUMMARY_MODES or summary == "count":
            raise InvalidRequest("_summary must be true, false, text or data", expression=["_summary"])
        if summary != "false":
            from fhir_gateway.rest.elements import apply_summary

            return apply_summary(resource, summary)  # type: ignore[arg-type]
    if elements:
        from fhir_gateway.rest.elements import apply_elements

        return apply_elements(resource, [e.strip() for e in elements.split(",") if e.strip()])
    return resource
