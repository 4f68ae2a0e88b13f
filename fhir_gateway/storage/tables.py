"""SQLAlchemy Core tables: versioned resources and one index table per search-parameter type.

``resource`` holds the current version of each logical resource (what reads and
searches see); ``resource_version`` holds every version (vread, _history).
Index tables hang off ``resource.pk`` and are rewritten with each version in the
same transaction. Times are microseconds since the epoch (UTC) so that date
search compares integers on SQLite and PostgreSQL alike.
"""
from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias).
PK = BigInteger().with_variant(Integer(), "sqlite")

resource = Table(
    "resource", metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("rtype", String(64), nullable=False),
    Column("fid", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("body", LargeBinary, nullable=True),
    UniqueConstraint("rtype", "fid", name="uq_resource_type_id"),
    Index("ix_resource_type_updated", "rtype", "last_updated"),
)

resource_version = Table(
    "resource_version", metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("resource_pk", ForeignKey("resource.pk", ondelete="CASCADE"), nullable=False),
    Column("rtype", String(64), nullable=False),
    Column("fid", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("method", String(8), nullable=False),
    Column("body", LargeBinary, nullable=True),
    UniqueConstraint("rtype", "fid", "version", name="uq_version"),
    Index("ix_version_updated", "last_updated"),
    Index("ix_version_type_updated", "rtype", "last_updated"),
)


def _index_table(name: str, *columns: Column[object], extra: tuple[Index, ...] = ()) -> Table:
    return Table(
        name, metadata,
        Column("resource_pk", ForeignKey("resource.pk", ondelete="CASCADE"), nullable=False),
        Column("rtype", String(64), nullable=False),
        Column("param", String(100), nullable=False),
        *columns,
        Column("grp", Integer, nullable=True),
        Index(f"ix_{name}_resource", "resource_pk", "param"),
        *extra,
    )


idx_token = _index_table(
    "idx_token",
    Column("system", Text, nullable=True),  # Text: codes and systems have no length limit in FHIR
    Column("code", Text, nullable=True),
    Column("text", Text, nullable=True),
    extra=(Index("ix_idx_token_lookup", "rtype", "param", "code"),),
)
idx_string = _index_table(
    "idx_string",
    Column("value", String(255), nullable=False),
    Column("exact", Text, nullable=False),
    # pattern ops: PostgreSQL can then use the index for LIKE 'prefix%' whatever the collation
    extra=(Index("ix_idx_string_lookup", "rtype", "param", "value",
                 postgresql_ops={"value": "varchar_pattern_ops"}),),
)
idx_date = _index_table(
    "idx_date",
    Column("low", BigInteger, nullable=False),
    Column("high", BigInteger, nullable=False),
    extra=(Index("ix_idx_date_lookup", "rtype", "param", "low", "high"),),
)
idx_reference = _index_table(
    "idx_reference",
    Column("target_type", String(64), nullable=True),
    Column("target_id", String(64), nullable=True),
    Column("url", Text, nullable=True),
    Column("version", String(64), nullable=True),
    extra=(
        Index("ix_idx_reference_lookup", "rtype", "param", "target_id"),
        Index("ix_idx_reference_target", "target_type", "target_id"),
    ),
)
idx_quantity = _index_table(
    "idx_quantity",
    Column("value", Float, nullable=True),
    Column("low", Float, nullable=True),
    Column("high", Float, nullable=True),
    Column("system", Text, nullable=True),
    Column("code", Text, nullable=True),
    Column("unit", Text, nullable=True),
    extra=(Index("ix_idx_quantity_lookup", "rtype", "param", "value"),),
)
idx_number = _index_table(
    "idx_number",
    Column("value", Float, nullable=False),
    Column("low", Float, nullable=False),
    Column("high", Float, nullable=False),
    extra=(Index("ix_idx_number_lookup", "rtype", "param", "value"),),
)
idx_uri = _index_table(
    "idx_uri",
    Column("value", Text, nullable=False),
    extra=(Index("ix_idx_uri_lookup", "rtype", "param", "value", postgresql_ops={"value": "text_pattern_ops"}),),
)

INDEX_TABLES: dict[str, Table] = {
    "token": idx_token, "string": idx_string, "date": idx_date, "reference": idx_reference,
    "quantity": idx_quantity, "number": idx_number, "uri": idx_uri,
}
