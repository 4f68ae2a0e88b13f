"""Creates on the EHR without duplicates: no vendor of the three is idempotent on POST
(vendor-notes §5.8), so a create whose outcome is unknown is checked by a search before any
second attempt, and a create answered with an empty body is read back via ``Location``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fhir_gateway.upstream.client import UpstreamClient
from fhir_gateway.upstream.errors import (
    UpstreamConfigError,
    UpstreamHttpError,
    UpstreamUnavailable,
    WriteNotConfirmed,
)
from fhir_gateway.upstream.paging import search_all
from mappers.vendor.references import split_reference

JSON = dict[str, Any]


@dataclass
class Created:
    vendor_id: str | None
    resource: JSON | None
    location: str | None
    confirmed_by_search: bool = False


def _id_from_location(location: str | None, base: str) -> str | None:
    if not location:
        return None
    parts = split_reference(location.split("/_history/")[0], base)
    return parts[1] if parts else None


def create(client: UpstreamClient, resource: JSON, *, match: dict[str, str] | None = None,
           patient: str | None = None) -> Created:
    """POST ``resource`` (already in the vendor's dialect). ``match``: search parameters that find it
    if it was created, used for the read-back check (and as If-None-Exist where supported)."""
    rtype = str(resource["resourceType"])
    profile = client.profile
    if not profile.supports(rtype, "create"):
        raise UpstreamConfigError(f"{profile.name} does not support creating {rtype}")
    headers = {}
    if match and profile.writes.conditional_create:
        headers["If-None-Exist"] = urlencode(match)
    for attempt in (1, 2):
        try:
            reply = client.send("POST", client.connection.url(rtype), resource_type=rtype, body=resource,
                                patient=patient, headers=headers)
        except (UpstreamUnavailable, UpstreamHttpError) as exc:
            if isinstance(exc, UpstreamHttpError) and (exc.status or 0) < 500:
                raise
            if not match:
                raise WriteNotConfirmed(f"create {rtype}: outcome unknown and no search can confirm it; "
                                        "not retried (it could duplicate)") from None
            found = search_all(client, rtype, match, patient=patient, max_pages=2).resources
            if len(found) == 1:
                return Created(str(found[0].get("id")), found[0], None, confirmed_by_search=True)
            if found or attempt == 2:
                raise WriteNotConfirmed(f"create {rtype}: outcome unknown; {len(found)} matching resource(s)") from None
            continue  # verified absent: one more attempt cannot duplicate
        location = reply.headers.get("location") or reply.headers.get("content-location")
        vendor_id = _id_from_location(location, client.connection.fhir_base)
        body = reply.body
        if body is None and vendor_id and profile.writes.read_back_via_location:
            body = client.read(rtype, vendor_id, patient=patient)
        if vendor_id is None and body is not None:
            vendor_id = str(body.get("id")) if body.get("id") else None
        return Created(vendor_id, body, location)
    raise WriteNotConfirmed(f"create {rtype}: not confirmed")  # pragma: no cover - the loop always returns
