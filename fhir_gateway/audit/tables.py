"""The audit store: an append-only log of AuditEvents in hash chains, plus one head row per chain.

Each entry belongs to a ``chain`` and has a place in it (``chain_seq``), assigned under that chain's
head row lock in the transaction that writes the entry, so a chain's places have no gaps and its
order is its commit order. Chain 1 holds the entries appended inside an audited change's own
transaction; each process that group-commits entries of reads (:mod:`.appender`) claims a chain of
its own, so processes do not queue on one head row. ``seq`` is the global order of all entries
(unique; it may have gaps). ``audit_head.seq``/``hash`` are the chain's last place and hash;
``base_seq``/``base_hash`` where its kept part starts after a retention purge.
``body`` is the AuditEvent JSON through the body codec (encrypted at rest like every resource).
``materialized`` marks entries already copied into the FHIR store, where auditors search them as
``AuditEvent``.
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
    Column("chain", Integer, nullable=False, server_default="1"),  # 1: appended in the audited transaction
    Column("chain_seq", BigInteger, nullable=False, server_default="0"),  # place in the chain, from 1
    Index("ix_audit_log_recorded", "recorded"),
    Index("ix_audit_log_materialized", "materialized", "seq"),
)

audit_head = Table(
    "audit_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # the chain
    Column("seq", BigInteger, nullable=False),  # the chain's last place (chain_seq)
    Column("hash", String(64), nullable=False),
    Column("base_seq", BigInteger, nullable=False),  # entries up to here were purged (retention)
    Column("base_hash", String(64), nullable=False),  # the hash the first kept entry chains from
)

GENESIS = "0" * 64
SHARED_CHAIN = 1  # entries appended inside the audited change's transaction
SEQUENCE = "audit_log_seq"  # PostgreSQL: the global seq
