"""An upstream HTTP response → FHIR JSON, or a typed error saying what went wrong.

Vendors answer errors in many shapes (vendor-notes §5.3): OperationOutcomes with vendor codes
(Epic), minimal ones (Cerner), IIS HTML pages (Epic 404s), empty bodies (401/406), and sometimes
broken JSON. Whatever is not FHIR JSON becomes :class:`UpstreamBadResponse`; nothing of it is kept.
"""
from __future__ import annotations

from typing import Any

import requests

from fhir_gateway.upstream.errors import (
    PagingSessionExpired,
    UpstreamBadResponse,
    UpstreamHttpError,
    UpstreamNotFound,
    UpstreamRateLimited,
)
from mappers.vendor.searchset import VendorIssue, outcome_issues
from vendor_profiles.schema import VendorProfile

JSON = dict[str, Any]


def _looks_html(response: requests.Response) -> bool:
    ctype = response.headers.get("Content-Type", "").lower()
    head = response.content[:200].lstrip().lower()
    return "html" in ctype or head.startswith((b"<!doctype html", b"<html"))


def parse_json(response: requests.Response, what: str) -> Any:
    if _looks_html(response):
        raise UpstreamBadResponse(f"{what}: HTTP {response.status_code} answered with an HTML page, not FHIR JSON",
                                  status=response.status_code)
    if not response.content.strip():
        return None
    if response.content.lstrip()[:1] == b"<":
        raise UpstreamBadResponse(f"{what}: HTTP {response.status_code} answered with XML; the Accept header "
                                  "was not honoured", status=response.status_code)
    try:
        return response.json()
    except ValueError:
        raise UpstreamBadResponse(f"{what}: HTTP {response.status_code} body is not valid JSON",
                                  status=response.status_code) from None


def decode(response: requests.Response, profile: VendorProfile, what: str) -> JSON | None:
    """The FHIR resource of a successful response (None for an empty body); raise for anything else."""
    body = parse_json(response, what)
    status = response.status_code
    if status < 400:
        if body is None:
            return None
        if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
            raise UpstreamBadResponse(f"{what}: HTTP {status} JSON is not a FHIR resource", status=status)
        return body
    issues: list[VendorIssue] = []
    if isinstance(body, dict):
        issues = outcome_issues(body, profile.errors.vendor_code_system)
    codes = {i.vendor_code for i in issues if i.vendor_code}
    detail = "; ".join(f"{i.severity}/{i.code}" + (f"/{i.vendor_code}" if i.vendor_code else "") for i in issues)
    message = f"{what}: HTTP {status}" + (f" ({detail})" if detail else "")
    if codes & set(profile.paging.session_expired_codes) or status in profile.paging.session_expired_statuses:
        raise PagingSessionExpired(message, status=status, issues=issues)
    if status == 404:
        raise UpstreamNotFound(message, status=status, issues=issues)
    if status in (429, 503):
        raise UpstreamRateLimited(message, status=status, issues=issues)
    raise UpstreamHttpError(message, status=status, issues=issues)
