"""What an interaction handler works with: the wired services and the per-request state."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, Table
from sqlalchemy.sql.expression import FromClause

from fhir_gateway.access import AccessPolicy, RequestContext
from fhir_gateway.errors import Gone, InvalidRequest, NotFound, UnknownResourceType
from fhir_gateway.search.registry import SearchRegistry
from fhir_gateway.settings import Settings
from fhir_gateway.storage.repository import Repository, StoredResource

if TYPE_CHECKING:
    from fhir_gateway.audit.trail import AuditTrail
    from fhir_gateway.crypto.keyring import KeyRing
    from fhir_gateway.storage.searching import SearchService
    from fhir_gateway.upstream.tenants import TenantClients


class Validator:
    """Structure validation seam (``fhir_gateway.validation``): the full R4 walk, plus the
    fhir.resources R4B models when ``r4b_models`` (API writes). Bulk import turns the models
    off: they cost ~0.3 ms a resource and, fuzzed, found nothing the R4 walk missed."""

    def __init__(self, *, r4b_models: bool = True) -> None:
        self.r4b_models = r4b_models

    def check(self, resource: dict[str, Any], expected_type: str | None = None) -> None:
        from fhir_gateway.validation import check_resource

        check_resource(resource, expected_type=expected_type, r4b_models=self.r4b_models)


@dataclass
class FhirServices:
    """Everything wired once by ``create_app``; shared by all requests (and safe across threads)."""

    settings: Settings
    registry: SearchRegistry
    repository: Repository
    search: SearchService
    access: AccessPolicy
    validator: Validator
    audit: AuditTrail | None = None
    keyring: KeyRing | None = None
    upstream: TenantClients | None = None  # EHR clients per tenant, made on first use by $ehr-sync

    @property
    def resource_types(self) -> frozenset[str]:
        return self.registry.resource_types


@dataclass
class Interaction:
    """One request's state: the open connection and who is asking."""

    services: FhirServices
    conn: Connection
    ctx: RequestContext
    # set by the dispatcher, read by the audit recorder
    interaction: str | None = None
    rtype: str | None = None
    fid: str | None = None

    def require_type(self, rtype: str) -> str:
        if rtype not in self.services.resource_types:
            raise UnknownResourceType(f"unknown resource type '{rtype[:64]}'")
        return rtype

    def current(self, rtype: str, fid: str) -> StoredResource:
        """The live resource or 404/410."""
        stored = self.services.repository.read(self.conn, rtype, fid)
        if stored is None:
            raise NotFound(f"{rtype}/{fid} is not known", expression=[rtype])
        if stored.deleted:
            raise Gone(f"{rtype}/{fid} was deleted", expression=[rtype])
        return stored

    def visible(self, resource: dict[str, Any], interaction: str | None = None) -> bool:
        """Whether ``resource`` may be returned; ``interaction`` defaults to this request's own."""
        return self.services.access.can_see(self.ctx, resource, interaction or self.interaction or "read")

    def shape(self, resource: dict[str, Any]) -> dict[str, Any]:
        """The fields of ``resource`` this requester may see (minimum necessary)."""
        return self.services.access.shape(self.ctx, resource)

    def scope(self, table: Table | FromClause) -> ColumnElement[bool] | None:
        """The access policy's SQL scope over ``resource`` or ``resource_version`` rows."""
        pk = table.c.resource_pk if "resource_pk" in table.c else table.c.pk
        return self.services.access.scope(self.ctx, table.c.rtype, pk, table.c.fid,
                                          self.interaction or "search-type")

    def base(self) -> str:
        return self.services.settings.fhir_base


def parse_version(value: str, what: str = "version") -> int:
    try:
        n = int(value)
    except ValueError:
        raise InvalidRequest(f"{what} must be an integer") from None
    if n < 1:
        raise InvalidRequest(f"{what} must be positive")
    return n
