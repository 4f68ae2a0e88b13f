"""Data keys for envelope encryption (see fhir_gateway/crypto/tables.py).

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_key",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
        sa.Column("kek_id", sa.String(200), nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
    )
    # at most one active key per purpose: two processes starting at once cannot both create one
    op.create_index("uq_data_key_active_purpose", "data_key", ["purpose"], unique=True,
                    sqlite_where=sa.text("status = 'active'"), postgresql_where=sa.text("status = 'active'"))


def downgrade() -> None:
    op.drop_index("uq_data_key_active_purpose", table_name="data_key")
    op.drop_table("data_key")
