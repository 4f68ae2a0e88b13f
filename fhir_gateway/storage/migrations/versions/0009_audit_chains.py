"""Audit chains: one hash chain per writer process for entries group-committed outside a change's transaction.

``audit_log.chain`` names the chain an entry belongs to and ``chain_seq`` its place in it; ``audit_head``
gets one row per chain (id = chain). Chain 1 is the shared chain of entries appended inside the audited
change's transaction (writes, imports, CLI); every process that group-commits read entries claims a chain
of its own, so worker processes no longer queue on one head row. ``seq`` stays the global order
(PostgreSQL: from the ``audit_log_seq`` sequence, SQLite: max + 1 under the write lock).
Existing entries are chain 1 with ``chain_seq = seq``, so their hashes still verify.

Revision ID: 0009
Revises: 0008
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("chain", sa.Integer, nullable=False, server_default="1"))
    op.add_column("audit_log", sa.Column("chain_seq", sa.BigInteger, nullable=False, server_default="0"))
    op.execute("UPDATE audit_log SET chain_seq = seq")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE audit_log_seq")
        op.execute("SELECT setval('audit_log_seq', coalesce((SELECT max(seq) FROM audit_log), 0) + 1, false)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE IF EXISTS audit_log_seq")
    op.execute("DELETE FROM audit_head WHERE id <> 1")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("chain_seq")
        batch.drop_column("chain")
