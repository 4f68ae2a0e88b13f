"""The ``data_key`` table: versioned data keys, stored only wrapped by the key-encryption key.

One row per key version (``version`` is global across purposes):

* ``purpose`` ``body``: AES-256-GCM keys for resource bodies; exactly one is ``active``
  (new writes), the others ``retired`` (still decrypt what they encrypted);
* ``purpose`` ``blind-index``: the HMAC-SHA256 key of the blind indexes, generated once.

At most one key per purpose is active (a partial unique index), so processes that
start at once cannot both create a first key. ``created`` is microseconds since the
epoch (UTC), like every time in :mod:`fhir_gateway.storage.tables`. The schema is
created by migration ``0002_data_keys``.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, Table, text

from fhir_gateway.storage.tables import metadata

PURPOSE_BODY = "body"
PURPOSE_BLIND_INDEX = "blind-index"
PURPOSES = (PURPOSE_BODY, PURPOSE_BLIND_INDEX)
STATUS_ACTIVE = "active"
STATUS_RETIRED = "retired"

data_key = Table(
    "data_key", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("purpose", String(32), nullable=False),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("kek_id", String(200), nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Index("uq_data_key_active_purpose", "purpose", unique=True,
          sqlite_where=text("status = 'active'"), postgresql_where=text("status = 'active'")),
)
