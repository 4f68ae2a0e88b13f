"""Read and search probes on the test patient: does each claimed type answer, in which page sizes,
how fast, and does paging work the way the profile expects (vendor-notes §5.2)?

Searches use small pages so that paging runs over several pages; each call is timed. A search the
server refuses for a missing parameter is retried once with the parameter it names (when a value is
known), so an unknown server still gets a useful answer: "Observation search needs category".
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fhir_gateway.upstream.client import UpstreamClient
from fhir_gateway.upstream.errors import UpstreamError
from fhir_gateway.upstream.onboard.advice import explain, missing_words, required_combos
from fhir_gateway.upstream.onboard.plan import Probe, default_value
from fhir_gateway.upstream.onboard.report import Report
from fhir_gateway.upstream.paging import first_page_params
from mappers.vendor.searchset import split_searchset

JSON = dict[str, Any]
PAGING_PARAMS = ("sessionID", "-pageContext", "cursor", "_getpages", "_offset", "page", "_page", "pageId")


@dataclass
class ProbeContext:
    report: Report
    client: UpstreamClient
    page_size: int = 10
    max_pages: int = 3
    unrecorded: list[str] = field(default_factory=list)  # replay: requests the replay set has no answer for
    offline: bool = False  # replay: recordings were made with their own _count, so page sizes prove nothing

    def timed(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            self.report.latencies_ms.append((time.perf_counter() - started) * 1000)


def _not_recorded(ctx: ProbeContext, exc: UpstreamError, before: int) -> bool:
    return len(ctx.unrecorded) > before


def _fail(ctx: ProbeContext, area: str, name: str, exc: UpstreamError, rtype: str, interaction: str,
          given: set[str], before: int) -> None:
    if _not_recorded(ctx, exc, before):
        ctx.report.add(area, name, "warn", "this call is not in the replay set",
                       "record it against the vendor's sandbox to check it offline")
        return
    reason, step = explain(exc, rtype, interaction, given)
    ctx.report.add(area, name, "fail", reason, step)


def _first_page(ctx: ProbeContext, probe: Probe) -> tuple[JSON, dict[str, str], str]:
    """The first page (retried once with a parameter the server says it needs); returns the page, the
    parameters that worked, and the next step when a retry was needed."""
    client, rtype = ctx.client, probe.resource_type
    params = first_page_params(client, rtype, probe.params)
    params[client.profile.paging.count_param] = str(ctx.page_size)
    url = client.connection.url(rtype)
    try:
        return ctx.timed(client.get, url, params, resource_type=rtype, search=True), probe.params, ""
    except UpstreamError as exc:
        detail = "; ".join(i.text for i in exc.issues if i.text)
        combos = required_combos(detail) if exc.status == 400 else []
        given = set(probe.params)
        for combo in sorted(combos, key=len):
            extra = {p: default_value(p, rtype) for p in combo if p not in given}
            if not extra or any(v is None for v in extra.values()):
                continue
            retry = {**probe.params, **{k: str(v) for k, v in extra.items()}}
            try:
                page = ctx.timed(client.get, url, {**params, **retry}, resource_type=rtype, search=True)
            except UpstreamError:
                continue
            words = missing_words(combos, given)
            return page, retry, (f"{rtype} search needs {words}: add it to the app's requests "
                                 f"(resources.{rtype}.required_params in the vendor profile)")
        raise


def _paging_style(url: str) -> str:
    names = [k for k, _ in parse_qsl(urlsplit(url).query)]
    return next((n for n in names if n in PAGING_PARAMS), "next link")


def run_search(ctx: ProbeContext, probe: Probe) -> list[JSON]:
    client, report, rtype = ctx.client, ctx.report, probe.resource_type
    name = f"{rtype} search"
    if probe.unbuildable:
        report.add("probe", name, "warn", f"not probed: {rtype} {probe.unbuildable}",
                   f"add the values the vendor expects to resources.{rtype}.sync in the profile")
        return []
    before = len(ctx.unrecorded)
    try:
        bundle, used, retried = _first_page(ctx, probe)
    except UpstreamError as exc:
        _fail(ctx, "probe", name, exc, rtype, "search", set(probe.params), before)
        return []
    if bundle.get("resourceType") != "Bundle":
        report.add("probe", name, "fail", "the answer is not a Bundle", "check the base URL")
        return []
    page = split_searchset(bundle, client.profile.errors.vendor_code_system)
    for other in probe.alternatives if not page.resources else ():  # e.g. Epic Condition by another category
        try:
            params = {**first_page_params(client, rtype, other), client.profile.paging.count_param: str(ctx.page_size)}
            again = ctx.timed(client.get, client.connection.url(rtype), params, resource_type=rtype, search=True)
        except UpstreamError:
            continue
        found = split_searchset(again, client.profile.errors.vendor_code_system)
        if found.resources:
            bundle, page, used = again, found, other
            break
    sizes = [len(page.resources)]
    report.page_sizes.append(len(page.resources))
    metrics: dict[str, Any] = {"params": sorted(used), "first_page": len(page.resources),
                               "outcome_entries": len(page.warnings)}
    if "total" in bundle:
        metrics["total"] = bundle["total"]
    if retried:
        report.add("probe", name, "warn", f"refused without {missing_from(used, probe.params)}; works with it",
                   retried, **metrics)
    elif not page.resources:
        report.add("probe", name, "warn", f"the search works but found no {rtype} for the test patient",
                   "pick a test patient with data (--patient) to check reads and paging", **metrics)
    else:
        text = f"{len(page.resources)} on the first page"
        if page.warnings:
            text += f"; {len(page.warnings)} outcome entr{'y' if len(page.warnings) == 1 else 'ies'} (kept as warnings)"
        report.add("probe", name, "pass", text, **metrics)
    if len(page.resources) > ctx.page_size and not ctx.offline:
        report.add("paging", f"{rtype} page size", "warn", f"asked for {ctx.page_size}, got {len(page.resources)}",
                   "the server ignores _count here; sync still follows every page")
    resources = list(page.resources)
    if page.next_url:
        resources += _follow(ctx, rtype, page.next_url, sizes, {(r.get("resourceType"), r.get("id"))
                                                                for r in page.resources})
    return resources


def missing_from(used: dict[str, str], original: dict[str, str]) -> str:
    return "+".join(k for k in used if k not in original)


def _follow(ctx: ProbeContext, rtype: str, next_url: str, sizes: list[int], seen: set[Any]) -> list[JSON]:
    client, report, profile = ctx.client, ctx.report, ctx.client.profile
    style = _paging_style(next_url)
    expected = profile.paging.token_param or "next link"
    out: list[JSON] = []
    duplicates = 0
    url: str | None = next_url
    before = len(ctx.unrecorded)
    while url is not None and len(sizes) < ctx.max_pages:
        try:
            bundle = ctx.timed(client.get, url, None, resource_type=rtype, search=True)
        except UpstreamError as exc:
            if _not_recorded(ctx, exc, before):
                report.add("paging", rtype, "warn", f"the next link uses {style} (the profile expects {expected}); "
                           "the next page is not in the replay set", "record a second page to check paging offline",
                           style=style, pages=len(sizes))
            else:
                _fail(ctx, "paging", rtype, exc, rtype, "page", set(), before)
            return out
        page = split_searchset(bundle, profile.errors.vendor_code_system)
        sizes.append(len(page.resources))
        report.page_sizes.append(len(page.resources))
        for resource in page.resources:
            key = (resource.get("resourceType"), resource.get("id"))
            duplicates += key in seen
            seen.add(key)
            out.append(resource)
        url = page.next_url
    metrics: dict[str, Any] = {"pages": len(sizes), "page_sizes": sizes, "style": style, "duplicates": duplicates}
    if profile.paging.style != "next-link" and style != expected:
        report.add("paging", rtype, "warn", f"pages with {style}; the profile expects {expected}",
                   "next links are followed verbatim, so sync works; set paging.token_param in the profile",
                   **metrics)
    elif duplicates and not profile.paging.duplicates_across_pages:
        report.add("paging", rtype, "warn", f"{duplicates} resource(s) repeated across pages",
                   "set paging.duplicates_across_pages = true in the profile (sync de-duplicates anyway)", **metrics)
    else:
        more = " (more pages not followed)" if url else ""
        report.add("paging", rtype, "pass", f"{len(sizes)} pages via {style}, sizes {sizes}{more}", **metrics)
    return out


def run_read(ctx: ProbeContext, rtype: str, vendor_id: str) -> JSON | None:
    before = len(ctx.unrecorded)
    try:
        body: JSON = ctx.timed(ctx.client.read, rtype, vendor_id)
    except UpstreamError as exc:
        _fail(ctx, "probe", f"{rtype} read", exc, rtype, "read", set(), before)
        return None
    ctx.report.add("probe", f"{rtype} read", "pass", f"read {rtype} by id")
    return body


def run_probe(ctx: ProbeContext, probe: Probe) -> None:
    if probe.resource_type == "Patient":
        if probe.read:
            run_read(ctx, "Patient", probe.params["_id"])
        return
    found = run_search(ctx, probe)
    first = next((r for r in found if isinstance(r.get("id"), str)), None)
    if probe.read and first is not None:
        run_read(ctx, probe.resource_type, first["id"])
