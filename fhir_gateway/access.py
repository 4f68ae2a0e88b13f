"""The access-decision seam: asked before every interaction and for every resource returned.

The SMART issue supplies a scope- and compartment-aware policy; until then
:class:`AllowAll` is the identity policy (and tests exercise a denying one).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import ColumnElement

from fhir_gateway.errors import Forbidden


@dataclass(frozen=True)
class RequestContext:
    """Who is asking, from where: what access decisions and audit records need. No PHI."""

    client_id: str | None = None
    user: str | None = None
    role: str | None = None
    scopes: frozenset[str] = frozenset()
    patient: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class AccessPolicy(Protocol):
    """The one decision point. The pipeline asks it before every interaction (``check``), for every
    resource read, returned or written (``can_see``, ``shape``), and for the SQL scope that limits
    searches and history to what the requester may see (``scope``), so paging and totals never
    count what the requester cannot read."""

    def check(self, ctx: RequestContext, interaction: str, resource_type: str | None) -> None:
        """Raise Forbidden (or Unauthorized) if ``interaction`` on ``resource_type`` is not allowed."""

    def can_see(self, ctx: RequestContext, resource: dict[str, Any], interaction: str = "read") -> bool:
        """Whether ``resource`` may be returned to (or written by) this requester in ``interaction``."""

    def shape(self, ctx: RequestContext, resource: dict[str, Any]) -> dict[str, Any]:
        """The resource reduced to the fields this requester may see (minimum necessary)."""

    def scope(self, ctx: RequestContext, rtype: ColumnElement[Any], pk: ColumnElement[Any],
              fid: ColumnElement[Any], interaction: str = "search-type") -> ColumnElement[bool] | None:
        """A SQL condition over a resource's type, pk and id limiting what searches/history match."""

    def restore_hidden(self, ctx: RequestContext, new: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
        """On update, put back the fields ``shape`` hides from this requester (so they are not lost)."""


class AllowAll:
    """The identity policy: everything allowed, nothing hidden."""

    def check(self, ctx: RequestContext, interaction: str, resource_type: str | None) -> None:
        return None

    def can_see(self, ctx: RequestContext, resource: dict[str, Any], interaction: str = "read") -> bool:
        return True

    def shape(self, ctx: RequestContext, resource: dict[str, Any]) -> dict[str, Any]:
        return resource

    def scope(self, ctx: RequestContext, rtype: ColumnElement[Any], pk: ColumnElement[Any],
              fid: ColumnElement[Any], interaction: str = "search-type") -> ColumnElement[bool] | None:
        return None

    def restore_hidden(self, ctx: RequestContext, new: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
        return new


class DenyTypes(AllowAll):
    """Denies every interaction on the given types; a simple real policy for tests and lock-downs."""

    def __init__(self, *types: str) -> None:
        self.types = frozenset(types)

    def check(self, ctx: RequestContext, interaction: str, resource_type: str | None) -> None:
        if resource_type in self.types:
            raise Forbidden(f"{interaction} on {resource_type} is not permitted")

    def can_see(self, ctx: RequestContext, resource: dict[str, Any], interaction: str = "read") -> bool:
        return resource.get("resourceType") not in self.types

    def scope(self, ctx: RequestContext, rtype: ColumnElement[Any], pk: ColumnElement[Any],
              fid: ColumnElement[Any], interaction: str = "search-type") -> ColumnElement[bool] | None:
        return rtype.not_in(sorted(self.types))
