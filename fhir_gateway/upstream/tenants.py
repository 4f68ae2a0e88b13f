"""The hub's upstream clients, one per tenant, kept for the life of the process.

Why keep them: a client holds the connection's token cache (in-process without Redis), its circuit
breaker and its throttle; building one per request would fetch a token per request and forget every
failure. Each caller gets a :func:`~.sync_many.worker_client` copy (own HTTP session and call
counter), sharing the rest. A connection file is re-read when it changes (its mtime), so an operator
can fix one without a restart. Tenant names are checked before they become a path.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhir_gateway.upstream.client import UpstreamClient
from fhir_gateway.upstream.connection import Connection, load_connection
from fhir_gateway.upstream.errors import UpstreamConfigError
from fhir_gateway.upstream.sync_many import worker_client

if TYPE_CHECKING:
    from fhir_gateway.rest.context import FhirServices

TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
Builder = Callable[[Connection], UpstreamClient]


class UnknownTenant(UpstreamConfigError):
    """No connection file for this tenant (or a name that cannot be one)."""

    code = "upstream-unknown-tenant"


class TenantClients:
    def __init__(self, directory: Path | str, build: Builder) -> None:
        self.directory = Path(directory)
        self.build = build
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, UpstreamClient]] = {}

    def get(self, tenant: str) -> UpstreamClient:
        """A client for ``tenant`` for one caller (raises :class:`UnknownTenant`, :class:`UpstreamConfigError`)."""
        if not TENANT.match(tenant):
            raise UnknownTenant("not a tenant name")
        path = self.directory / f"{tenant}.toml"
        try:
            mtime = path.stat().st_mtime
        except OSError:
            raise UnknownTenant(f"no connection for tenant {tenant}") from None
        with self._lock:
            cached = self._cache.get(tenant)
            if cached is None or cached[0] != mtime:
                cached = (mtime, self.build(load_connection(tenant, self.directory)))
                self._cache[tenant] = cached
        return worker_client(cached[1])


def default_clients(services: FhirServices, directory: Path | str) -> TenantClients:
    """Clients as ``telehub sync`` builds them: Redis token cache and bucket when configured; every
    upstream call on the hub's audit trail."""
    from fhir_gateway.upstream.audit import Auditor, MemoryAuditor, TrailAuditor
    from fhir_gateway.upstream.factory import build_client

    redis_client: Any = None
    if services.settings.redis_url:
        import redis

        redis_client = redis.Redis.from_url(services.settings.redis_url)
    auditor: Auditor = (TrailAuditor(services.audit, services.repository.engine) if services.audit is not None
                        else MemoryAuditor())
    return TenantClients(directory, lambda conn: build_client(conn, redis_client=redis_client, auditor=auditor))
