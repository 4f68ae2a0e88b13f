"""Typed FHIR errors, each carrying its HTTP status and OperationOutcome issue code.

Raised anywhere below the REST layer; rendered once, in ``rest/outcomes.py``,
as an OperationOutcome (https://hl7.org/fhir/R4/operationoutcome.html).
Messages must never contain PHI: name the element or parameter, not its value.
"""
from __future__ import annotations

from typing import Any


class FhirError(Exception):
    """Base class: ``status`` is the HTTP status, ``code`` the IssueType code."""

    status = 400
    code = "invalid"
    severity = "error"

    def __init__(self, diagnostics: str, *, expression: list[str] | None = None,
                 status: int | None = None, code: str | None = None) -> None:
        super().__init__(diagnostics)
        self.diagnostics = diagnostics
        self.expression = expression or []
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code

    def outcome(self) -> dict[str, Any]:
        issue: dict[str, Any] = {"severity": self.severity, "code": self.code,
                                 "diagnostics": self.diagnostics}
        if self.expression:
            issue["expression"] = self.expression
        return {"resourceType": "OperationOutcome", "issue": [issue]}


class InvalidRequest(FhirError):
    """Malformed request: bad JSON, bad headers, bad parameter syntax (400)."""


class InvalidSearch(FhirError):
    """Unknown or malformed search parameter (400, IssueType not-supported/invalid)."""

    code = "not-supported"


class InvalidResource(FhirError):
    """Structurally or semantically invalid resource (422 Unprocessable Entity)."""

    status = 422
    code = "structure"


class NotFound(FhirError):
    status = 404
    code = "not-found"


class UnknownResourceType(NotFound):
    code = "not-supported"


class Gone(FhirError):
    """The resource existed and was deleted (410)."""

    status = 410
    code = "deleted"


class Conflict(FhirError):
    status = 409
    code = "conflict"


class PreconditionFailed(FhirError):
    """If-Match mismatch or an ambiguous conditional interaction (412)."""

    status = 412
    code = "conflict"


class VersionConflict(PreconditionFailed):
    """The client's If-Match names a version that is no longer current."""


class MultipleMatches(PreconditionFailed):
    code = "multiple-matches"


class PayloadTooLarge(FhirError):
    status = 413
    code = "too-costly"


class UnsupportedMediaType(FhirError):
    status = 415
    code = "not-supported"


class NotAcceptable(FhirError):
    status = 406
    code = "not-supported"


class MethodNotAllowed(FhirError):
    status = 405
    code = "not-supported"


class Forbidden(FhirError):
    status = 403
    code = "forbidden"


class Unauthorized(FhirError):
    status = 401
    code = "login"


class NotSupported(FhirError):
    """A valid FHIR request this server does not implement (501 is wrong for FHIR; 400 not-supported)."""

    code = "not-supported"


class DataIntegrityError(FhirError):
    """Stored data failed its integrity check (e.g. an AES-GCM tag mismatch): never says which data."""

    status = 500
    code = "security"

    def __init__(self, diagnostics: str = "stored data failed an integrity check; the incident was recorded",
                 **kw: object) -> None:
        super().__init__(diagnostics, **kw)  # type: ignore[arg-type]
