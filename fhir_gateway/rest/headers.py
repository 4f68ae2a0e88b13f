"""HTTP header semantics of the FHIR RESTful API: ETag/If-Match, Prefer, Location.

https://hl7.org/fhir/R4/http.html#versioning, #ops (Prefer: return=…, handling=…).
"""
from __future__ import annotations

import re

from fhir_gateway.errors import InvalidRequest
from fhir_gateway.rest.messages import FhirRequest, FhirResponse
from fhir_gateway.storage.repository import StoredResource

_ETAG = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')
RETURN_MODES = ("minimal", "representation", "OperationOutcome")


def if_match_version(req: FhirRequest) -> int | None:
    """The version named by If-Match (``W/"3"``), or None when absent."""
    value = req.header("if-match")
    if value is None or value.strip() == "":
        return None
    m = _ETAG.match(value)
    if not m:
        raise InvalidRequest('If-Match must be an ETag such as W/"3"', expression=["If-Match"])
    return int(m.group(1))


def prefer(req: FhirRequest) -> dict[str, str]:
    """Parse ``Prefer`` into a dict (``return``, ``handling``, ``respond-async``)."""
    out: dict[str, str] = {}
    for part in (req.header("prefer") or "").split(","):
        for token in part.split(";"):
            token = token.strip()
            if not token:
                continue
            key, _, value = token.partition("=")
            out[key.strip().lower()] = value.strip().strip('"')
    return out


def return_mode(req: FhirRequest) -> str:
    mode = prefer(req).get("return", "representation")
    return mode if mode in RETURN_MODES else "representation"


def lenient(req: FhirRequest) -> bool:
    return prefer(req).get("handling") == "lenient"


def version_headers(stored: StoredResource) -> dict[str, str]:
    return {"ETag": stored.etag, "Last-Modified": stored.last_modified}


def location(base: str, stored: StoredResource) -> str:
    return f"{base}/{stored.rtype}/{stored.fid}/_history/{stored.version}"


def written(req: FhirRequest, base: str, stored: StoredResource, status: int, message: str) -> FhirResponse:
    """The response to a create/update/patch, honouring ``Prefer: return``."""
    headers = version_headers(stored)
    headers["Location"] = location(base, stored)
    mode = return_mode(req)
    if mode == "minimal":
        return FhirResponse(status, None, headers)
    if mode == "OperationOutcome":
        return FhirResponse(status, {"resourceType": "OperationOutcome", "issue": [
            {"severity": "information", "code": "informational", "diagnostics": message}]}, headers)
    return FhirResponse(status, stored.resource, headers)
