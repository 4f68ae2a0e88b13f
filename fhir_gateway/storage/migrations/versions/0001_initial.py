"""Initial schema: versioned resources and one index table per search-parameter type.

Revision ID: 0001
Revises:
"""
from __future__ import annotations

from alembic import op

from fhir_gateway.storage.tables import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The first revision creates the tables exactly as declared in tables.py; later
# revisions must use explicit op.* calls so old databases upgrade step by step.


def upgrade() -> None:
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
