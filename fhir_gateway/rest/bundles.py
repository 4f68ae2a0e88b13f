"""Building response Bundles (searchset, history) and their paging links."""
from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from fhir_gateway.search.values import micros_to_instant
from fhir_gateway.storage.repository import StoredResource


def bundle(kind: str, entries: list[dict[str, Any]], *, total: int | None = None,
           links: list[dict[str, str]] | None = None, now: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": kind}
    if now is not None:
        out["meta"] = {"lastUpdated": micros_to_instant(now)}
    if total is not None:
        out["total"] = total
    if links:
        out["link"] = links
    if entries:  # FHIR JSON forbids empty arrays
        out["entry"] = entries
    return out


def page_url(base: str, path: str, params: list[tuple[str, str]]) -> str:
    query = urlencode(params, safe=",:|$*")
    return f"{base}/{path}" + (f"?{query}" if query else "")


def history_entry(base: str, stored: StoredResource) -> dict[str, Any]:
    url = f"{base}/{stored.rtype}/{stored.fid}"
    entry: dict[str, Any] = {"fullUrl": url}
    if stored.resource is not None:
        entry["resource"] = stored.resource
    method = stored.method if stored.method in ("POST", "PUT", "DELETE", "PATCH") else "PUT"
    entry["request"] = {"method": method,
                        "url": f"{stored.rtype}" if method == "POST" else f"{stored.rtype}/{stored.fid}"}
    status = {"POST": "201 Created", "DELETE": "204 No Content"}.get(method, "200 OK")
    entry["response"] = {"status": status, "etag": stored.etag, "lastModified": stored.last_updated_instant}
    return entry
