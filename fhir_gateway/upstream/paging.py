"""Every page of a search: ``link[next]`` followed verbatim, results de-duplicated, pages limited.

Each vendor pages its own way (Epic ``sessionID``, Cerner ``-pageContext``, athena ``cursor``,
plain servers any ``next`` link; vendor-notes §5.2), but all of them put the cursor in
``Bundle.link[next]``, so one loop serves all; the profile sets the page size and the limits.
A resource seen on two pages (Cerner) is kept once, the later copy winning. An expired paging
session (Epic 4113) restarts the search once; de-duplication makes the restart safe.
https://hl7.org/fhir/R4/http.html#paging
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fhir_gateway.upstream.client import UpstreamClient
from fhir_gateway.upstream.errors import PagingSessionExpired, UpstreamBadResponse
from fhir_gateway.upstream.params import check_search
from mappers.vendor.searchset import VendorIssue, split_searchset
from vendor_profiles.hooks import hooks_for

JSON = dict[str, Any]


@dataclass
class SearchResult:
    resources: list[JSON] = field(default_factory=list)
    warnings: list[VendorIssue] = field(default_factory=list)
    pages: int = 0
    duplicates: int = 0
    restarts: int = 0
    truncated: bool = False  # the page limit stopped it before the last page


def first_page_params(client: UpstreamClient, resource_type: str, params: dict[str, str]) -> dict[str, str]:
    """The search's own parameters plus tenancy, vendor hook parameters and the page size."""
    profile, conn = client.profile, client.connection
    spec = profile.resources.get(resource_type)
    size = profile.paging.page_size
    for cap in (profile.paging.max_page_size, spec.count_max if spec else None):
        if cap is not None:
            size = min(size, cap)
    out = {**client.tenancy_params(), **hooks_for(profile.hooks).extra_search_params(resource_type, conn.tenant)}
    out[profile.paging.count_param] = str(size)
    out.update(params)
    return out


def search_all(client: UpstreamClient, resource_type: str, params: dict[str, str], *,
               patient: str | None = None, max_pages: int | None = None) -> SearchResult:
    profile = client.profile
    check_search(profile, resource_type, params)
    limit = max_pages or profile.paging.max_pages
    first_url = client.connection.url(resource_type)
    first_params = first_page_params(client, resource_type, params)
    result = SearchResult()
    kept: dict[tuple[str, str], JSON] = {}
    order: list[tuple[str, str]] = []
    url: str | None = first_url
    query: dict[str, str] | None = first_params
    while url is not None:
        if result.pages >= limit:
            result.truncated = True
            result.warnings.append(VendorIssue("warning", "too-costly", None,
                                               f"stopped after {limit} pages; more results exist"))
            break
        try:
            bundle = client.get(url, query, resource_type=resource_type, patient=patient, search=True)
        except PagingSessionExpired:
            if result.restarts or url == first_url:
                raise
            result.restarts += 1
            url, query = first_url, first_params
            continue
        if bundle.get("resourceType") != "Bundle":
            raise UpstreamBadResponse(f"search {resource_type}: the answer is not a Bundle")
        page = split_searchset(bundle, profile.errors.vendor_code_system)
        result.pages += 1
        result.warnings.extend(page.warnings)
        for resource in page.resources:
            key = (str(resource.get("resourceType")), str(resource.get("id")))
            if key in kept:
                result.duplicates += 1
                if _newer_or_same(resource, kept[key]):
                    kept[key] = resource
                continue
            kept[key] = resource
            order.append(key)
        url, query = page.next_url, None
    result.resources = [kept[k] for k in order]
    return result


def _newer_or_same(candidate: JSON, current: JSON) -> bool:
    new = str((candidate.get("meta") or {}).get("lastUpdated") or "")
    old = str((current.get("meta") or {}).get("lastUpdated") or "")
    return new >= old
