"""When each (tenant, EHR patient) was last synced successfully: the freshness window of ``$ehr-sync``.

Why a table and not Provenance.recorded: sync writes a Provenance only when something changed, so an
unchanged record would look stale forever and be fetched again on every launch. The row is written in
the sync's own write transaction (it commits with the data or not at all). The key is the hub id the
sync derives from (vendor base, "Patient", vendor id) — already a pseudonymous id in the store — so
the EHR's patient id itself is never stored here. Counts by type are not PHI.
Times are microseconds since the epoch (UTC), as everywhere in the store.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlalchemy import BigInteger, Column, Connection, String, Table, Text, select

from fhir_gateway.storage.tables import metadata

upstream_sync = Table(
    "upstream_sync", metadata,
    Column("tenant", String(64), primary_key=True),
    Column("patient_key", String(64), primary_key=True),
    Column("hub_patient", String(64), nullable=False),
    Column("synced", BigInteger, nullable=False),
    Column("counts", Text, nullable=False),
)


@dataclass(frozen=True)
class SyncMark:
    hub_patient: str
    synced: int  # microseconds since the epoch
    counts: dict[str, int] = field(default_factory=dict)


def last_sync(db: Connection, tenant: str, patient_key: str) -> SyncMark | None:
    row = db.execute(select(upstream_sync).where(upstream_sync.c.tenant == tenant,
                                                 upstream_sync.c.patient_key == patient_key)).first()
    if row is None:
        return None
    return SyncMark(row.hub_patient, int(row.synced), dict(json.loads(row.counts or "{}")))


def mark_synced(db: Connection, tenant: str, patient_key: str, mark: SyncMark) -> None:
    """Insert or replace the row (a delete + insert is portable across SQLite and PostgreSQL)."""
    db.execute(upstream_sync.delete().where(upstream_sync.c.tenant == tenant,
                                            upstream_sync.c.patient_key == patient_key))
    db.execute(upstream_sync.insert().values(tenant=tenant, patient_key=patient_key, hub_patient=mark.hub_patient,
                                             synced=mark.synced, counts=json.dumps(mark.counts, sort_keys=True)))
