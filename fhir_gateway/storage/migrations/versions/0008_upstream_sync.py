"""Upstream sync freshness: the last successful sync of each (tenant, EHR patient).

Revision ID: 0008
Revises: 0007
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "upstream_sync",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("patient_key", sa.String(64), primary_key=True),
        sa.Column("hub_patient", sa.String(64), nullable=False),
        sa.Column("synced", sa.BigInteger, nullable=False),
        sa.Column("counts", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("upstream_sync")
