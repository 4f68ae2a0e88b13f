"""Sign-in hardening: account lock-out (``locked_until``) and TOTP replay guard (``totp_last_step``).

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("auth_user", sa.Column("locked_until", sa.BigInteger, nullable=True))
    op.add_column("auth_user", sa.Column("totp_last_step", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("auth_user") as batch:
        batch.drop_column("totp_last_step")
        batch.drop_column("locked_until")
