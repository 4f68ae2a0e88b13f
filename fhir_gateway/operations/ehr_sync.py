"""``POST [base]/Patient/$ehr-sync``: pull one patient's record from a clinic's EHR, unless it is fresh.

What ``telehub sync`` does, as an operation, so the SMART app can refresh a patient on launch.
Input (query or Parameters): ``tenant`` (the clinic connection), ``patient`` (the EHR's patient id),
``maxAge`` (seconds; a sync younger than this is not repeated; absent or 0: always sync).
Output: Parameters with ``patient`` (the hub Patient), ``result`` (``synced`` | ``fresh``),
``lastSynced``, one ``count`` per resource type, ``created``/``updated``/``unchanged`` when it synced,
and ``warning`` strings (vendor outcome codes, skipped types; never content).

Only system (backend services) clients that may create and update Patient may run it: the access
decision is asked for both, so patient and user tokens are refused there. The request itself runs in
a read transaction (``affects_state=False``): the sync writes in its own write transaction *after* the
upstream fetch, so no database write lock is held while the EHR answers.
"""
from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from typing import Any

from fhir_gateway.errors import FhirError, Forbidden, InvalidRequest
from fhir_gateway.operations.registry import Operation, parameters_value, register
from fhir_gateway.rest.context import FhirServices, Interaction, Validator
from fhir_gateway.rest.messages import FhirRequest, FhirResponse
from fhir_gateway.search.values import micros_to_instant
from fhir_gateway.upstream.client import UpstreamClient
from fhir_gateway.upstream.errors import UpstreamConfigError, UpstreamError
from fhir_gateway.upstream.freshness import SyncMark, last_sync, mark_synced
from fhir_gateway.upstream.sync import SyncReport, dialect_for, sync_patient
from fhir_gateway.upstream.tenants import TenantClients, UnknownTenant, default_clients

log = logging.getLogger("telehub.upstream")
PATIENT_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_made = threading.Lock()


def tenant_clients(services: FhirServices) -> TenantClients:
    """The process's clients (made on first use; tests put their own on ``services.upstream``)."""
    with _made:
        if services.upstream is None:
            services.upstream = default_clients(services, services.settings.connections_dir)
        return services.upstream


def _authorise(it: Interaction) -> None:
    if it.ctx.user or it.ctx.patient:
        raise Forbidden("$ehr-sync is for system (backend services) clients only")
    it.services.access.check(it.ctx, "create", "Patient")
    it.services.access.check(it.ctx, "update", "Patient")


def _inputs(req: FhirRequest) -> tuple[str, str, int]:
    tenant, patient, raw_age = (parameters_value(req, n) for n in ("tenant", "patient", "maxAge"))
    if not isinstance(tenant, str) or not tenant:
        raise InvalidRequest("the tenant parameter is required", expression=["tenant"])
    if not isinstance(patient, str) or not PATIENT_ID.match(patient):
        raise InvalidRequest("the patient parameter must be the EHR's patient id", expression=["patient"])
    try:
        max_age = int(raw_age) if raw_age is not None else 0
    except (TypeError, ValueError):
        raise InvalidRequest("maxAge must be a whole number of seconds", expression=["maxAge"]) from None
    if max_age < 0:
        raise InvalidRequest("maxAge must not be negative", expression=["maxAge"])
    return tenant, patient, max_age


def _client(it: Interaction, tenant: str) -> UpstreamClient:
    try:
        return tenant_clients(it.services).get(tenant)
    except UnknownTenant:
        raise FhirError("no clinic connection is configured for this tenant", expression=["tenant"], status=422,
                        code="not-found") from None
    except UpstreamConfigError as exc:
        log.error("connection %s cannot be used: %s", tenant, exc)
        raise FhirError("the clinic connection is misconfigured (see the hub's log)", status=500,
                        code="exception") from None


def _parameters(hub_patient: str, result: str, synced: int, counts: dict[str, int],
                report: SyncReport | None) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": "patient", "valueReference": {"reference": f"Patient/{hub_patient}"}},
        {"name": "result", "valueCode": result},
        {"name": "lastSynced", "valueInstant": micros_to_instant(synced)}]
    params += [{"name": "count", "part": [{"name": "type", "valueCode": t}, {"name": "fetched", "valueInteger": n}]}
               for t, n in sorted(counts.items())]
    if report is not None:
        params += [{"name": n, "valueInteger": getattr(report, n)} for n in ("created", "updated", "unchanged")]
        params += [{"name": "warning", "valueString": w} for w in [*sorted(set(report.warnings)), *report.skipped]]
    return {"resourceType": "Parameters", "parameter": params}


def ehr_sync(it: Interaction, req: FhirRequest, rtype: str | None, fid: str | None) -> FhirResponse:
    if req.method != "POST":
        raise InvalidRequest("$ehr-sync changes the hub's data and must be invoked with POST")
    _authorise(it)
    tenant, patient, max_age = _inputs(req)
    client = _client(it, tenant)
    key = dialect_for(client.connection).default_ids("Patient", patient)
    now = time.time_ns() // 1000
    mark = last_sync(it.conn, tenant, key) if max_age > 0 else None
    if mark is not None and now - mark.synced < max_age * 1_000_000:
        stored = it.services.repository.read(it.conn, "Patient", mark.hub_patient)
        if stored is not None and not stored.deleted:
            return FhirResponse(200, _parameters(mark.hub_patient, "fresh", mark.synced, mark.counts, None))

    def record(db: Any, report: SyncReport) -> None:
        mark_synced(db, tenant, key, SyncMark(report.patient, now, dict(report.fetched)))

    # as `telehub sync`: the full R4 walk validates; the R4B models reject some valid R4 vendor data
    services = dataclasses.replace(it.services, validator=Validator(r4b_models=False))
    try:
        report = sync_patient(services, client, patient, now_micros=now, on_written=record)
    except UpstreamError as exc:
        log.warning("ehr-sync %s failed: %s", client.connection.key, type(exc).__name__)
        status = f" (HTTP {exc.status})" if exc.status else ""
        raise FhirError(f"the clinic's EHR could not be synced: {exc.code}{status}", status=502,
                        code="transient" if exc.retryable else "exception") from None
    return FhirResponse(200, _parameters(report.patient, "synced", now, report.fetched, report))


register(Operation("$ehr-sync", "urn:telehub:OperationDefinition/Patient-ehr-sync", system=False, type_level=True,
                   instance=False, types=("Patient",), affects_state=False, handler=ehr_sync, public=True))
