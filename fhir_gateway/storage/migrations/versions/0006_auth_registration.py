"""Dynamic client registration (RFC 7591/7592): initial access tokens and registration records.

Revision ID: 0006
Revises: 0005
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auth_initial_token",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("scope_ceiling", sa.Text, nullable=True),
        sa.Column("uses_left", sa.Integer, nullable=True),
        sa.Column("expires", sa.BigInteger, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "auth_client_registration",
        sa.Column("client_id", sa.String(128), primary_key=True),
        sa.Column("access_token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("initial_token_hash", sa.String(64), nullable=True),
        sa.Column("auth_method", sa.String(32), nullable=False),
        sa.Column("metadata_json", sa.Text, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("auth_client_registration")
    op.drop_table("auth_initial_token")
