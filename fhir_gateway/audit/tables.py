"""The audit store: an append-only, hash-chained log of AuditEvents, plus its chain head.

``audit_log.seq`` is assigned under the head's row lock in the same transaction
as the audited change, so sequence numbers have no gaps and the chain order is
the commit order. ``body`` is the AuditEvent JSON through the body codec
(encrypted at rest like every resource). ``materialized`` marks entries already
copied into the FHIR store, where auditors search them as ``AuditEvent``.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, LargeBinary, String, Table, Text

from fhir_gateway.storage.tables import metadata

audit_log = Table(
    "audit_log", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("recorded", BigInteger, nullable=False),  # µs since epoch, UTC
    Column("action", String(1), nullable=False),
    Column("subtype", String(64), nullable=False),
    Column("outcome", String(2), nullable=False),
    Column("agent", String(255), nullable=True),  # client id / user reference, never a name
    Column("patients", Text, nullable=False, default=""),  # " id1 id2 " for export --patient
    Column("body", LargeBinary, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("materialized", Boolean, nullable=False, default=False),
    Index("ix_audit_log_recorded", "recorded"),
    Index("ix_audit_log_materialized", "materialized", "seq"),
)

audit_head = Table(
    "audit_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),  # last appended entry
    Column("hash", String(64), nullable=False),
    Column("base_seq", BigInteger, nullable=False),  # entries up to here were purged (retention)
    Column("base_hash", String(64), nullable=False),  # the hash the first kept entry chains from
)

GENESIS = "0" * 64
