"""HL7 v2 interface: inbox (unique sender + control id), dead letters, outbound queue.

Revision ID: 0007
Revises: 0006
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "hl7_inbox",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("sender", sa.String(255), nullable=False),
        sa.Column("control_id", sa.String(199), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("received", sa.BigInteger, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("sender", "control_id", name="uq_hl7_inbox_sender_control_id"),
    )
    op.create_table(
        "hl7_dead_letter",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("sender", sa.String(255), nullable=False),
        sa.Column("control_id", sa.String(199), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("received", sa.BigInteger, nullable=False),
        sa.Column("ack_code", sa.String(2), nullable=False),
        sa.Column("error_code", sa.String(8), nullable=False),
        sa.Column("location", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.Column("raw", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_hl7_dead_letter_status", "hl7_dead_letter", ["status", "received"])
    op.create_table(
        "hl7_outbound",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("destination", sa.String(255), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("control_id", sa.String(199), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt", sa.BigInteger, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("sent", sa.BigInteger, nullable=True),
        sa.Column("last_error", sa.String(255), nullable=True),
        sa.Column("payload", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_hl7_outbound_due", "hl7_outbound", ["status", "destination", "seq"])


def downgrade() -> None:
    op.drop_index("ix_hl7_outbound_due", table_name="hl7_outbound")
    op.drop_table("hl7_outbound")
    op.drop_index("ix_hl7_dead_letter_status", table_name="hl7_dead_letter")
    op.drop_table("hl7_dead_letter")
    op.drop_table("hl7_inbox")
