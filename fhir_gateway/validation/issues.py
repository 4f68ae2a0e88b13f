"""Validation findings and the error that carries all of them to the client.

An :class:`Issue` is one ``OperationOutcome.issue``
(https://hl7.org/fhir/R4/operationoutcome.html): severity, IssueType code, a
diagnostics text and the FHIRPath expression of the element. Diagnostics name
the element and the problem, never the offending value (it may be PHI).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_gateway.errors import InvalidResource


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding. ``code`` is an IssueType: ``structure``, ``required``, ``value`` or ``invalid``."""

    code: str
    diagnostics: str
    expression: str | None = None
    severity: str = "error"

    def as_outcome_issue(self) -> dict[str, Any]:
        issue: dict[str, Any] = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            issue["expression"] = [self.expression]
        return issue


class ValidationFailed(InvalidResource):
    """A resource failed validation (422); its OperationOutcome lists every issue, not just the first."""

    def __init__(self, issues: list[Issue]) -> None:
        if not issues:
            raise ValueError("ValidationFailed needs at least one issue")
        first = issues[0]
        more = f" (and {len(issues) - 1} more issues)" if len(issues) > 1 else ""
        super().__init__(first.diagnostics + more,
                         expression=[first.expression] if first.expression else None, code=first.code)
        self.issues = list(issues)

    def outcome(self) -> dict[str, Any]:
        return {"resourceType": "OperationOutcome", "issue": [i.as_outcome_issue() for i in self.issues]}
