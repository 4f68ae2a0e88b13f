"""Validation on write: is this JSON a structurally valid FHIR R4 (4.0.1) resource?

``validate_resource`` returns every :class:`Issue`; ``check_resource`` raises
:class:`ValidationFailed` (an ``InvalidResource``, HTTP 422) whose OperationOutcome
lists them all. See ``structure.py`` for how the R4 table and the fhir.resources
R4B models share the work, and ``docs/r4-r4b-differences.md`` for where they differ.
"""
from __future__ import annotations

from fhir_gateway.validation.issues import Issue, ValidationFailed
from fhir_gateway.validation.structure import check_resource, validate_resource

__all__ = ["Issue", "ValidationFailed", "check_resource", "validate_resource"]
