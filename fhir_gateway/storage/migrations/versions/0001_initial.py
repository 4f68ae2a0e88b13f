"""Initial schema: versioned resources and one index table per search-parameter type.

Revision ID: 0001
Revises:
"""
from __future__ import annotations

from alembic import op

from fhir_gateway.storage.tables import INDEX_TABLES, resource, resource_version

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The first revision creates these tables as declared in tables.py when it was written;
# later revisions add their own tables and changes with explicit op.* calls.
TABLES = [resource, resource_version, *INDEX_TABLES.values()]


def upgrade() -> None:
    for table in TABLES:
        table.create(op.get_bind())


def downgrade() -> None:
    for table in reversed(TABLES):
        table.drop(op.get_bind())
