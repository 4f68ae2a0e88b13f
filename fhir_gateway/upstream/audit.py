"""Every upstream call leaves an AuditEvent: which connection, which patient, which resource type.

References and codes only (docs/ARCHITECTURE.md "Security"): the query string is hashed by the
audit builder, never stored; no resource content. Failures are audited too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from fhir_gateway.access import RequestContext
from fhir_gateway.audit.events import AuditInput

INTERACTIONS = {"GET": "read", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass(frozen=True)
class UpstreamCall:
    vendor: str
    tenant: str
    method: str
    resource_type: str | None
    status: int  # 0: no answer (connection failure, timeout)
    search: bool = False
    patient: str | None = None  # the hub's patient id the call was about
    url: str = ""  # hashed into the AuditEvent, never stored

    def audit_input(self) -> AuditInput:
        interaction = "search-type" if self.search else INTERACTIONS.get(self.method, "operation")
        ctx = RequestContext(client_id=f"telehub-upstream:{self.tenant}", role="integration")
        return AuditInput(interaction, self.status or 599, ctx, resource_type=self.resource_type,
                          patients={self.patient} if self.patient else set(), query=self.url or None,
                          operation=f"upstream-{self.vendor}",
                          description=f"upstream {self.vendor} {self.method} {self.resource_type or '-'}"
                                      f" -> {self.status or 'no answer'}")


class Auditor(Protocol):
    def record(self, call: UpstreamCall) -> None: ...


class TrailAuditor:
    """Writes to the hub's hash-chained audit trail (group-committed; see ``AuditTrail.commit``)."""

    def __init__(self, trail: Any, engine: Any) -> None:
        self.trail, self.engine = trail, engine

    def record(self, call: UpstreamCall) -> None:
        self.trail.commit(self.engine, call.audit_input())


@dataclass
class MemoryAuditor:
    """Keeps calls in memory (tests, dry runs)."""

    calls: list[UpstreamCall] = field(default_factory=list)

    def record(self, call: UpstreamCall) -> None:
        self.calls.append(call)
