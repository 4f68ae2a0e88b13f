"""The one place exceptions become OperationOutcome responses (https://hl7.org/fhir/R4/operationoutcome.html).

Unexpected exceptions are logged with a request id and answered with a generic
500 outcome that carries that id and nothing else: no stack trace, no PHI.
"""
from __future__ import annotations

import logging

from fhir_gateway.errors import FhirError
from fhir_gateway.rest.messages import FhirResponse

log = logging.getLogger("telehub.fhir")


def error_response(exc: FhirError) -> FhirResponse:
    headers = {}
    if exc.status == 405:
        headers["Allow"] = "GET, POST, PUT, PATCH, DELETE, HEAD"
    return FhirResponse(exc.status, exc.outcome(), headers)


def internal_error(exc: BaseException, request_id: str) -> FhirResponse:
    log.exception("unhandled error in request %s (%s)", request_id, type(exc).__name__)
    return FhirResponse(500, {"resourceType": "OperationOutcome", "issue": [{
        "severity": "fatal", "code": "exception",
        "diagnostics": f"internal server error; reference {request_id} when reporting it"}]})
