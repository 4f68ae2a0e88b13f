"""Alembic environment: runs on the connection handed in by :mod:`fhir_gateway.storage.migrate`."""
from __future__ import annotations

from alembic import context

from fhir_gateway.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - alembic CLI use
    raise RuntimeError("run migrations through `telehub db upgrade`")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
context.run_migrations()
