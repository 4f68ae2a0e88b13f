"""Alembic migrations: upgrade is idempotent and safe to run from several processes; downgrade empties."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import inspect

from fhir_gateway.storage.engine import make_engine
from fhir_gateway.storage.migrate import downgrade, upgrade


def test_upgrade_creates_schema_idempotently_and_downgrade_drops_it(database_url: str) -> None:
    engine = make_engine(database_url)
    with ThreadPoolExecutor(3) as pool:  # several workers starting at once
        list(pool.map(lambda _: upgrade(engine), range(3)))
    tables = set(inspect(engine).get_table_names())
    assert {"resource", "resource_version", "idx_token", "idx_string", "idx_date", "idx_reference",
            "idx_quantity", "idx_number", "idx_uri", "alembic_version"} <= tables
    downgrade(engine, "base")
    assert "resource" not in set(inspect(engine).get_table_names())
    engine.dispose()
