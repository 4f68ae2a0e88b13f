"""Durable tables of the HL7 v2 interface: the inbox, the dead letters and the outbound queue.

``hl7_inbox`` holds every applied inbound message, unique on (sender, control id): the
row is inserted in the same database transaction as the message's FHIR writes and its
AuditEvent, so "in the inbox" means "applied", and a re-sent control id is found here and
acknowledged without being applied again. ``hl7_dead_letter`` keeps what was refused
(AE/AR), byte for byte, for ``telehub hl7 replay``. ``hl7_outbound`` is the outbound queue
(retry with back-off). Message bytes are PHI: they are sealed by the body codec (encrypted
at rest when encryption is on), bound to their row by the associated data.
Times are microseconds since the epoch (UTC), as everywhere in the store.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, Table, Text, UniqueConstraint

from fhir_gateway.storage.tables import PK, metadata

hl7_inbox = Table(
    "hl7_inbox", metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("sender", String(255), nullable=False),  # MSH-3^MSH-4 (application^facility)
    Column("control_id", String(199), nullable=False),  # MSH-10
    Column("event", String(32), nullable=False),  # ADT^A08
    Column("received", BigInteger, nullable=False),
    Column("digest", String(64), nullable=False),  # SHA-256 of the raw bytes: same id, other content?
    Column("raw", LargeBinary, nullable=False),  # sealed
    UniqueConstraint("sender", "control_id", name="uq_hl7_inbox_sender_control_id"),
)

hl7_dead_letter = Table(
    "hl7_dead_letter", metadata,
    Column("id", String(32), primary_key=True),
    Column("sender", String(255), nullable=False),
    Column("control_id", String(199), nullable=False),
    Column("event", String(32), nullable=False),
    Column("received", BigInteger, nullable=False),
    Column("ack_code", String(2), nullable=False),  # AE | AR
    Column("error_code", String(8), nullable=False),  # HL7 table 0357
    Column("location", String(64), nullable=False),  # ERR-2 style, e.g. PID^1^3
    Column("reason", Text, nullable=False),  # PHI-free: positions and codes only
    Column("status", String(16), nullable=False),  # open | replayed | superseded
    Column("attempts", Integer, nullable=False),
    Column("updated", BigInteger, nullable=False),
    Column("raw", LargeBinary, nullable=False),  # sealed
    Index("ix_hl7_dead_letter_status", "status", "received"),
)

hl7_outbound = Table(
    "hl7_outbound", metadata,
    Column("id", String(32), primary_key=True),
    Column("seq", BigInteger, nullable=False),  # enqueue order (µs clock + tiebreak) per destination
    Column("destination", String(255), nullable=False),  # host:port
    Column("event", String(32), nullable=False),
    Column("control_id", String(199), nullable=False),
    Column("status", String(16), nullable=False),  # pending | sent | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt", BigInteger, nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("sent", BigInteger, nullable=True),
    Column("last_error", String(255), nullable=True),  # PHI-free
    Column("payload", LargeBinary, nullable=False),  # sealed
    Index("ix_hl7_outbound_due", "status", "destination", "seq"),
)
