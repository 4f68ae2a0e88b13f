"""Search-result hygiene: split a vendor searchset into resources, warnings and the next link.

Epic puts OperationOutcome entries (``search.mode = "outcome"``) inside searchsets, e.g.
59204 "sub-resource … not authorized" (vendor-notes §2.3); they are not data, so they are
surfaced as :class:`VendorIssue` warnings instead. https://hl7.org/fhir/R4/bundle.html#searchset
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]
FATAL = frozenset({"fatal", "error"})


@dataclass(frozen=True)
class VendorIssue:
    """One OperationOutcome issue, with the vendor's own code when it has one. Carries no resource data."""

    severity: str
    code: str
    vendor_code: str | None = None
    text: str = ""

    @property
    def fatal(self) -> bool:
        return self.severity in FATAL


@dataclass
class SearchPage:
    resources: list[JSON] = field(default_factory=list)
    warnings: list[VendorIssue] = field(default_factory=list)
    next_url: str | None = None
    total: int | None = None


def outcome_issues(outcome: JSON, vendor_code_system: str | None = None) -> list[VendorIssue]:
    """The issues of an OperationOutcome; ``vendor_code_system`` (a regex) picks the vendor code coding."""
    pattern = re.compile(vendor_code_system) if vendor_code_system else None
    issues: list[VendorIssue] = []
    for issue in outcome.get("issue") or []:
        if not isinstance(issue, dict):
            continue
        raw = issue.get("details")
        details: JSON = raw if isinstance(raw, dict) else {}
        vendor_code = None
        for coding in details.get("coding") or []:
            system = coding.get("system") if isinstance(coding, dict) else None
            if isinstance(system, str) and (pattern is None or pattern.match(system)) and coding.get("code"):
                vendor_code = str(coding["code"])
                break
        text = details.get("text") or issue.get("diagnostics") or ""
        issues.append(VendorIssue(str(issue.get("severity") or "error"), str(issue.get("code") or "unknown"),
                                  vendor_code, str(text)))
    return issues


def has_fatal(issues: list[VendorIssue]) -> bool:
    """Information/warning issues on a 400 are non-fatal only when no fatal/error issue is present."""
    return any(i.fatal for i in issues)


def link(bundle: JSON, relation: str) -> str | None:
    for item in bundle.get("link") or []:
        if isinstance(item, dict) and item.get("relation") == relation and isinstance(item.get("url"), str):
            return str(item["url"])
    return None


def split_searchset(bundle: JSON, vendor_code_system: str | None = None) -> SearchPage:
    """Resources (match and include entries), warnings (outcome entries) and ``link[next]`` of one page."""
    page = SearchPage(next_url=link(bundle, "next"))
    total = bundle.get("total")
    page.total = total if isinstance(total, int) else None
    for entry in bundle.get("entry") or []:
        if not isinstance(entry, dict):
            continue
        resource = entry.get("resource")
        mode = (entry.get("search") or {}).get("mode") if isinstance(entry.get("search"), dict) else None
        if not isinstance(resource, dict):
            continue
        if mode == "outcome" or resource.get("resourceType") == "OperationOutcome":
            page.warnings.extend(outcome_issues(resource, vendor_code_system))
            continue
        page.resources.append(resource)
    return page
