"""Granted versus requested scopes, in the vendor's terms.

Vendors drop scopes without saying so (Cerner: v1 ``.read`` for a v2 client and ``offline_access``
for an "Online" app; athena: create/update scopes), and every call then fails with 403/404
(vendor-notes §6.4). Comparing the token response's ``scope`` with the request finds it at once.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from vendor_profiles.schema import VendorProfile


@dataclass
class ScopeReport:
    requested: list[str]
    granted: list[str]
    missing: list[str] = field(default_factory=list)  # requested, not granted
    known_drops: list[str] = field(default_factory=list)  # missing ones the profile says this vendor drops

    @property
    def ok(self) -> bool:
        return not self.missing

    def advice(self) -> str:
        if self.ok:
            return "every requested scope was granted"
        text = f"{len(self.missing)} requested scope(s) not granted: {' '.join(self.missing)}"
        if self.known_drops:
            text += (f". This vendor silently drops {' '.join(self.known_drops)}: request the form the profile "
                     "lists (e.g. v2 .rs scopes) and check the app registration")
        return text


def compare(profile: VendorProfile, requested: list[str], granted: str | list[str]) -> ScopeReport:
    given = granted.split() if isinstance(granted, str) else list(granted)
    report = ScopeReport(list(requested), given)
    have = set(given)
    report.missing = [s for s in requested if s not in have]
    patterns = [re.compile(p) for p in profile.scopes.silently_dropped]
    report.known_drops = [s for s in report.missing if any(p.search(s) for p in patterns)]
    return report
