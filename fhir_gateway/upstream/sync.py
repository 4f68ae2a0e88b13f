"""Pull one patient's US Core data from the clinic's EHR into the hub's store, idempotently.

Order matters for safety: everything is fetched first (any upstream error → nothing stored), then
mapped to canonical R4 (:mod:`mappers.vendor.canonical`) and written in one repository transaction
with one Provenance for what changed and one AuditEvent. Hub ids are name-based on the vendor URL,
unchanged content writes nothing (``skip_unchanged``), and Provenance is written only for changed
resources, so a second run changes nothing. The patient is matched to an existing hub patient by
MRN (the connection's canonical MRN system) before a new one is made.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection as DbConnection
from sqlalchemy import select

from fhir_gateway.access import RequestContext
from fhir_gateway.audit.events import AuditInput
from fhir_gateway.errors import FhirError
from fhir_gateway.rest.context import FhirServices
from fhir_gateway.search.values import micros_to_instant
from fhir_gateway.storage.tables import resource as resource_table
from fhir_gateway.upstream.client import UpstreamClient
from fhir_gateway.upstream.connection import Connection
from fhir_gateway.upstream.paging import search_all
from mappers.vendor.canonical import Dialect, to_canonical
from mappers.vendor.identifiers import MrnRule, find_mrn
from mappers.vendor.provenance import build_provenance

JSON = dict[str, Any]


@dataclass
class SyncReport:
    tenant: str
    vendor: str
    patient: str = ""  # the hub's patient id
    fetched: dict[str, int] = field(default_factory=dict)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    provenance: int = 0
    skipped: list[str] = field(default_factory=list)  # "Type: reason", no ids or content
    warnings: list[str] = field(default_factory=list)
    calls: int = 0

    def summary(self) -> str:
        got = ", ".join(f"{k} {v}" for k, v in sorted(self.fetched.items())) or "nothing"
        text = (f"sync {self.tenant} ({self.vendor}): fetched {got} in {self.calls} calls; "
                f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
                f"{self.provenance} Provenance")
        if self.skipped:
            text += f"; {len(self.skipped)} skipped:\n  " + "\n  ".join(self.skipped[:20])
        if self.warnings:
            text += f"\nvendor warnings: {len(self.warnings)} (" + "; ".join(sorted(set(self.warnings))[:10]) + ")"
        return text


def dialect_for(connection: Connection) -> Dialect:
    """The mappers' view of a connection (mappers never read profiles themselves)."""
    profile = connection.profile
    video = profile.extensions.video_links
    return Dialect(
        vendor=profile.name, source_base=connection.fhir_base,
        mrn_rules=tuple(MrnRule(r.system, r.system_regex, r.type_text, r.type_code) for r in profile.identifiers.mrn),
        mrn_system=connection.canonical_mrn_system, vendor_code_system=profile.errors.vendor_code_system,
        video_roles=dict(video.roles) if video else {},
        video_contained_type=video.contained_type if video else "HealthcareService",
        video_telecom_system=video.telecom_system if video else "url")


def _since_ok(resource: JSON, since: str | None) -> bool:
    updated = (resource.get("meta") or {}).get("lastUpdated")
    return since is None or not isinstance(updated, str) or updated >= since


def fetch_record(client: UpstreamClient, vendor_patient: str, report: SyncReport, *, hub_patient: str,
                 since: str | None = None, types: set[str] | None = None) -> tuple[JSON, list[JSON]]:
    """The Patient and every resource the profile syncs for it (all pages), as the vendor sent them."""
    profile = client.profile
    patient = client.read("Patient", vendor_patient, patient=hub_patient)
    report.fetched["Patient"] = 1
    found: list[JSON] = []
    for rtype, spec in profile.resources.items():
        if not spec.sync or (types is not None and rtype not in types) or not profile.supports(rtype, "search"):
            continue
        for variant in spec.sync:
            params = {spec.patient_param: vendor_patient, **variant.params}
            if since and spec.since_param:
                params[spec.since_param] = f"ge{since}"
            result = search_all(client, rtype, params, patient=hub_patient)
            report.warnings.extend(f"{rtype}: {w.severity}/{w.code}" + (f"/{w.vendor_code}" if w.vendor_code else "")
                                   for w in result.warnings)
            kept = [r for r in result.resources if _since_ok(r, since)]
            report.fetched[rtype] = report.fetched.get(rtype, 0) + len(kept)
            found.extend(kept)
    return patient, found


def _versions(db: DbConnection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    by_type: dict[str, list[str]] = {}
    for rtype, fid in keys:
        by_type.setdefault(rtype, []).append(fid)
    for rtype, fids in by_type.items():
        for start in range(0, len(fids), 500):
            rows = db.execute(select(resource_table.c.fid, resource_table.c.version).where(
                resource_table.c.rtype == rtype, resource_table.c.fid.in_(fids[start:start + 500])))
            out.update({(rtype, r.fid): int(r.version) for r in rows})
    return out


def _hub_patient_by_mrn(services: FhirServices, db: DbConnection, dialect: Dialect, patient: JSON) -> str | None:
    mrn = find_mrn(patient, dialect.mrn_rules)
    if mrn is None or dialect.mrn_system is None:
        return None
    matches = services.search.find(db, "Patient", [("identifier", f"{dialect.mrn_system}|{mrn}")], limit=2)
    return matches[0].fid if len(matches) == 1 else None


def _dedupe(bodies: list[JSON]) -> list[JSON]:
    seen: dict[tuple[str, str], JSON] = {}
    for body in bodies:
        seen[(body["resourceType"], body["id"])] = body
    return list(seen.values())


def sync_patient(services: FhirServices, client: UpstreamClient, vendor_patient: str, *, since: str | None = None,
                 types: set[str] | None = None, now_micros: int | None = None,
                 on_written: Callable[[DbConnection, SyncReport], None] | None = None) -> SyncReport:
    """``on_written``: runs last inside the write transaction (e.g. to record the sync time with the data)."""
    connection = client.connection
    dialect = dialect_for(connection)
    report = SyncReport(connection.tenant, connection.profile.name)
    calls_before = client.calls
    hub_patient = dialect.default_ids("Patient", vendor_patient)
    patient, found = fetch_record(client, vendor_patient, report, hub_patient=hub_patient, since=since, types=types)
    report.calls = client.calls - calls_before
    ctx = RequestContext(client_id=f"telehub-upstream:{connection.tenant}", role="integration")
    with services.repository.transaction(write=True) as db:
        matched = _hub_patient_by_mrn(services, db, dialect, patient)
        if matched:
            hub_patient = matched

        def ids(rtype: str, vendor_id: str) -> str:
            if rtype == "Patient" and vendor_id == vendor_patient:
                return hub_patient
            return dialect.default_ids(rtype, vendor_id)

        report.patient = hub_patient
        bodies: list[JSON] = []
        for item in [patient, *found]:
            mapped = to_canonical(item, dialect, ids)
            try:
                services.validator.check(mapped, expected_type=mapped["resourceType"])
            except FhirError as exc:
                where = ", ".join(exc.expression) or "(no location)"  # the path only: diagnostics may quote values
                report.skipped.append(f"{mapped['resourceType']}: {exc.code} at {where}"[:200])
                continue
            bodies.append(mapped)
        bodies = _dedupe(bodies)
        before = _versions(db, [(b["resourceType"], b["id"]) for b in bodies])
        changed: list[tuple[str, str]] = []
        sources: list[str] = []
        for body, (stored, _created) in zip(bodies, services.repository.upsert_many(db, bodies), strict=True):
            previous = before.get((stored.rtype, stored.fid))
            if previous == stored.version:
                report.unchanged += 1
                continue
            if previous is None:
                report.created += 1
            else:
                report.updated += 1
            changed.append((stored.reference, f"{stored.reference}/_history/{stored.version}"))
            sources.append(str(body["meta"]["source"]))
        if changed:
            now = now_micros if now_micros is not None else time.time_ns() // 1000
            provenance = build_provenance([v for _, v in changed], sources, micros_to_instant(now),
                                          vendor=connection.profile.name, created=report.updated == 0,
                                          agent_display=f"Telehub upstream sync ({connection.tenant})")
            services.repository.upsert_many(db, [provenance])
            report.provenance = 1
        if services.audit is not None:
            services.audit.append(db, AuditInput(
                "import", 200, ctx, resource_type="Patient", patients={hub_patient}, operation="upstream-sync",
                description=f"upstream sync from {connection.profile.name}: {report.created} created, "
                            f"{report.updated} updated, {report.unchanged} unchanged"))
        if on_written is not None:
            on_written(db, report)
    return report
