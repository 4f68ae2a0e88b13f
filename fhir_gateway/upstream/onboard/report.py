"""What onboarding found: one :class:`Check` per question, each pass / warn / fail with a reason and,
unless it passed, the next step in plain words. The report is data; :mod:`.render` draws it.
"""
from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["pass", "warn", "fail"]
ORDER: dict[str, int] = {"pass": 0, "warn": 1, "fail": 2}
STATUSES: tuple[Status, ...] = ("pass", "warn", "fail")


@dataclass
class Check:
    area: str  # discovery | capability | token | probe | paging | connection
    name: str
    status: Status
    reason: str
    next_step: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    vendor: str
    base_url: str
    tenant: str
    mode: str  # "live" or "replay"
    started_at: str
    checks: list[Check] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    page_sizes: list[int] = field(default_factory=list)
    calls: int = 0
    server: dict[str, str] = field(default_factory=dict)  # software name/version from the CapabilityStatement
    connection_file: str | None = None

    def add(self, area: str, name: str, status: Status, reason: str, next_step: str = "",
            **metrics: Any) -> Check:
        check = Check(area, name, status, reason, next_step, metrics)
        self.checks.append(check)
        return check

    @property
    def status(self) -> Status:
        worst = max((ORDER[c.status] for c in self.checks), default=0)
        for status in STATUSES:
            if ORDER[status] == worst:
                return status
        return "pass"

    def counts(self) -> dict[str, int]:
        out = {"pass": 0, "warn": 0, "fail": 0}
        for check in self.checks:
            out[check.status] += 1
        return out

    def find(self, area: str, name: str) -> Check | None:
        return next((c for c in self.checks if c.area == area and c.name == name), None)

    def latency_summary(self) -> dict[str, float]:
        values = sorted(self.latencies_ms)
        if not values:
            return {}
        p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
        return {"calls": float(len(values)), "p50_ms": round(statistics.median(values), 1),
                "p95_ms": round(p95, 1), "max_ms": round(values[-1], 1)}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("latencies_ms")
        data["status"] = self.status
        data["counts"] = self.counts()
        data["latency"] = self.latency_summary()
        data["page_sizes"] = {"pages": len(self.page_sizes), "min": min(self.page_sizes, default=0),
                              "max": max(self.page_sizes, default=0)}
        return data
