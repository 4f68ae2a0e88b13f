"""Schema migrations with Alembic, run programmatically (``telehub db upgrade`` and at start-up).

Several workers may start at once, so the upgrade holds a lock: a PostgreSQL
advisory lock, or an exclusive file lock beside the SQLite database.
"""
from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_LOCK_KEY = 0x7E1E_4B  # arbitrary, constant advisory-lock id


def alembic_config(conn: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
                conn.commit()
        return
    database = engine.url.database or ""
    if database in ("", ":memory:"):
        yield
        return
    lock_path = Path(database + ".migrate.lock")
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (idempotent)."""
    with _migration_lock(engine), engine.connect() as conn:
        conn.info["telehub_write"] = True
        with conn.begin():
            command.upgrade(alembic_config(conn), revision)


def downgrade(engine: Engine, revision: str) -> None:
    with _migration_lock(engine), engine.connect() as conn:
        conn.info["telehub_write"] = True
        with conn.begin():
            command.downgrade(alembic_config(conn), revision)
