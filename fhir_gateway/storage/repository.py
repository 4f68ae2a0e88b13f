"""The resource repository: versioned resource rows plus their index rows, on one connection.

Every write goes: body → codec → ``resource`` (current) + ``resource_version``
(history), and extractor → ``idx_*`` tables, all inside the caller's
transaction. Callers open transactions with :meth:`Repository.transaction`; a
failure anywhere rolls back everything (no half-written resource or index).
Concurrency is optimistic: each update is ``UPDATE … WHERE version = :seen``,
and PostgreSQL additionally locks the row with ``FOR UPDATE``.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, and_, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from fhir_gateway.errors import Conflict, VersionConflict
from fhir_gateway.search.index_rows import IndexRows
from fhir_gateway.search.values import micros_to_instant
from fhir_gateway.storage.codec import BodyCodec, JsonCodec, associated_data
from fhir_gateway.storage.engine import writer_lock
from fhir_gateway.storage.index_writer import IndexWriter
from fhir_gateway.storage.tables import resource, resource_version


@dataclass(frozen=True)
class StoredResource:
    """One version of a resource as stored: ``resource`` is None for a deletion."""

    pk: int
    rtype: str
    fid: str
    version: int
    last_updated: int
    deleted: bool
    resource: dict[str, Any] | None
    method: str = "PUT"

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'

    @property
    def last_modified(self) -> str:
        return formatdate(self.last_updated / 1_000_000, usegmt=True)

    @property
    def last_updated_instant(self) -> str:
        return micros_to_instant(self.last_updated)

    @property
    def reference(self) -> str:
        return f"{self.rtype}/{self.fid}"


class Clock:
    """Microsecond wall clock that never goes backwards within a process."""

    def __init__(self) -> None:
        self._last = 0

    def now(self) -> int:
        value = time.time_ns() // 1000
        if value <= self._last:
            value = self._last + 1
        self._last = value
        return value


def _content(resource: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in resource.items() if k != "meta"}
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    if meta:
        out["meta"] = meta
    return out


def same_content(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal apart from server-managed ``meta.versionId`` and ``meta.lastUpdated``."""
    return _content(a) == _content(b)


def new_id() -> str:
    return str(uuid.uuid4())


# The hot fixed statements, built once: SQLAlchemy memoizes a statement object's cache key, so
# executing the same object with new parameters skips expression building and cache-key generation.
_READ = (select(resource.c.pk, resource.c.version, resource.c.last_updated, resource.c.deleted, resource.c.body)
         .where(resource.c.rtype == bindparam("rtype"), resource.c.fid == bindparam("fid")))
_VREAD = select(resource_version).where(resource_version.c.rtype == bindparam("rtype"),
                                        resource_version.c.fid == bindparam("fid"),
                                        resource_version.c.version == bindparam("version"))
_LOAD = (select(resource.c.pk, resource.c.rtype, resource.c.fid, resource.c.version, resource.c.last_updated,
                resource.c.body)
         .where(resource.c.pk.in_(bindparam("pks", expanding=True)), resource.c.deleted.is_(False)))
_CURRENT = select(resource.c.pk, resource.c.version, resource.c.deleted).where(
    resource.c.rtype == bindparam("rtype"), resource.c.fid == bindparam("fid"))
_CURRENT_LOCKED = _CURRENT.with_for_update()
_INSERT_RESOURCE = insert(resource).returning(resource.c.pk)
_INSERT_VERSION = insert(resource_version)
_UPDATE_CURRENT = (update(resource)
                   .where(resource.c.pk == bindparam("w_pk"), resource.c.version == bindparam("w_version"))
                   .values(version=bindparam("n_version"), last_updated=bindparam("n_last_updated"),
                           deleted=bindparam("n_deleted"), body=bindparam("n_body")))


class Repository:
    """Versioned FHIR resources in SQL. Stateless apart from its collaborators; safe across threads."""

    def __init__(self, engine: Engine, index_writer: IndexWriter, codec: BodyCodec | None = None,
                 clock: Clock | None = None) -> None:
        self.engine = engine
        self.index_writer = index_writer
        self.codec: BodyCodec = codec or JsonCodec()
        self.clock = clock or Clock()
        self._lock_rows = engine.dialect.name == "postgresql"
        self._writer = writer_lock(engine)

    # -- transactions -------------------------------------------------------------------------
    @contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[Connection]:
        """One database transaction; ``write=True`` takes SQLite's write lock up front."""
        if write:
            with self._writer.held(), self.engine.connect() as conn:
                conn.info["telehub_write"] = True
                with conn.begin():
                    yield conn
            return
        with self.engine.connect() as conn:
            conn.info["telehub_write"] = False
            with conn.begin():
                yield conn

    # -- reads ----------------------------------------------------------------------------------
    def _decode(self, rtype: str, fid: str, version: int, body: bytes | None) -> dict[str, Any] | None:
        if body is None:
            return None
        return self.codec.decode(body, associated_data(rtype, fid, version))

    def read(self, conn: Connection, rtype: str, fid: str) -> StoredResource | None:
        """The current version (possibly a deletion marker), or None if the id never existed."""
        row = conn.execute(_READ, {"rtype": rtype, "fid": fid}).first()
        if row is None:
            return None
        return StoredResource(row.pk, rtype, fid, row.version, row.last_updated, row.deleted,
                              self._decode(rtype, fid, row.version, row.body))

    def vread(self, conn: Connection, rtype: str, fid: str, version: int) -> StoredResource | None:
        row = conn.execute(_VREAD, {"rtype": rtype, "fid": fid, "version": version}).first()
        if row is None:
            return None
        return self._version_from_row(row)

    def _version_from_row(self, row: Any) -> StoredResource:
        return StoredResource(row.resource_pk, row.rtype, row.fid, row.version, row.last_updated, row.deleted,
                              self._decode(row.rtype, row.fid, row.version, row.body), row.method)

    def load(self, conn: Connection, pks: Sequence[int]) -> list[StoredResource]:
        """Current, non-deleted resources by primary key, in the order given."""
        if not pks:
            return []
        rows = conn.execute(_LOAD, {"pks": list(pks)}).all()
        by_pk = {r.pk: r for r in rows}
        out = []
        for pk in pks:
            r = by_pk.get(pk)
            if r is not None:
                out.append(StoredResource(r.pk, r.rtype, r.fid, r.version, r.last_updated, False,
                                          self._decode(r.rtype, r.fid, r.version, r.body)))
        return out

    # -- writes ---------------------------------------------------------------------------------
    def _stamp(self, body: dict[str, Any], fid: str, version: int, now: int) -> dict[str, Any]:
        meta = dict(body.get("meta") or {})
        meta["versionId"] = str(version)
        meta["lastUpdated"] = micros_to_instant(now)
        stamped = {"resourceType": body["resourceType"], "id": fid}
        stamped.update((k, v) for k, v in body.items() if k not in ("resourceType", "id", "meta"))
        stamped["meta"] = meta
        return stamped

    def create(self, conn: Connection, body: dict[str, Any], fid: str | None = None,
               *, index: IndexRows | None = None) -> StoredResource:
        """Insert version 1 of a new resource (server id unless ``fid`` is given)."""
        rtype = body["resourceType"]
        fid = fid or new_id()
        now = self.clock.now()
        stamped = self._stamp(body, fid, 1, now)
        blob = self.codec.encode(stamped, associated_data(rtype, fid, 1))
        try:
            with conn.begin_nested():
                pk = conn.execute(_INSERT_RESOURCE, {"rtype": rtype, "fid": fid, "version": 1, "last_updated": now,
                                                     "deleted": False, "body": blob}).scalar_one()
        except IntegrityError as exc:
            raise Conflict(f"{rtype}/{fid} already exists", expression=[f"{rtype}.id"]) from exc
        self._insert_version(conn, pk, rtype, fid, 1, now, False, "POST", blob)
        self.index_writer.write(conn, pk, rtype, stamped, index)
        return StoredResource(pk, rtype, fid, 1, now, False, stamped, "POST")

    def update(self, conn: Connection, body: dict[str, Any], fid: str, *, if_match: int | None = None,
               method: str = "PUT", index: IndexRows | None = None,
               skip_unchanged: bool = False) -> tuple[StoredResource, bool]:
        """Write a new current version; create it (version 1) if the id is new. Returns (stored, created).

        With ``skip_unchanged`` an update whose content equals the current version
        (ignoring ``meta.versionId``/``lastUpdated``) writes nothing and returns the current
        version: re-imports and retried PUTs do not grow the history.
        """
        rtype = body["resourceType"]
        current = self._current_for_update(conn, rtype, fid)
        if current is None:
            if if_match is not None:
                raise VersionConflict(f"{rtype}/{fid} does not exist; If-Match cannot match",
                                      expression=[f"{rtype}.meta.versionId"])
            return self.create(conn, body, fid, index=index), True
        pk, version = current
        if if_match is not None and if_match != version:
            raise VersionConflict(f"version {if_match} of {rtype}/{fid} is not the current version ({version})",
                                  expression=[f"{rtype}.meta.versionId"])
        if skip_unchanged:
            existing = self.read(conn, rtype, fid)
            if existing is not None and existing.resource is not None and not existing.deleted \
                    and same_content(existing.resource, body):
                return existing, False
        new_version = version + 1
        now = self.clock.now()
        stamped = self._stamp(body, fid, new_version, now)
        blob = self.codec.encode(stamped, associated_data(rtype, fid, new_version))
        result = conn.execute(_UPDATE_CURRENT, {"w_pk": pk, "w_version": version, "n_version": new_version,
                                                "n_last_updated": now, "n_deleted": False, "n_body": blob})
        if result.rowcount != 1:
            raise VersionConflict(f"{rtype}/{fid} was changed concurrently; retry with the current version",
                                  expression=[f"{rtype}.meta.versionId"])
        self._insert_version(conn, pk, rtype, fid, new_version, now, False, method, blob)
        self.index_writer.clear(conn, pk)
        self.index_writer.write(conn, pk, rtype, stamped, index)
        return StoredResource(pk, rtype, fid, new_version, now, False, stamped, method), False

    def upsert_many(self, conn: Connection, bodies: list[dict[str, Any]], *, skip_unchanged: bool = True,
                    method: str = "PUT") -> list[tuple[StoredResource, bool]]:
        """Many creates/updates in a few statements (see :mod:`fhir_gateway.storage.bulk`)."""
        from fhir_gateway.storage.bulk import bulk_upsert

        return bulk_upsert(self, conn, bodies, skip_unchanged=skip_unchanged, method=method)

    def delete(self, conn: Connection, rtype: str, fid: str, *, if_match: int | None = None) -> StoredResource | None:
        """Mark the resource deleted (history kept). None when it does not exist or is already deleted."""
        current = self._current_for_update(conn, rtype, fid, include_deleted=False)
        if current is None:
            return None
        pk, version = current
        if if_match is not None and if_match != version:
            raise VersionConflict(f"version {if_match} of {rtype}/{fid} is not the current version ({version})")
        now = self.clock.now()
        result = conn.execute(_UPDATE_CURRENT, {"w_pk": pk, "w_version": version, "n_version": version + 1,
                                                "n_last_updated": now, "n_deleted": True, "n_body": None})
        if result.rowcount != 1:
            raise VersionConflict(f"{rtype}/{fid} was changed concurrently")
        self._insert_version(conn, pk, rtype, fid, version + 1, now, True, "DELETE", None)
        self.index_writer.clear(conn, pk)
        return StoredResource(pk, rtype, fid, version + 1, now, True, None, "DELETE")

    def _current_for_update(self, conn: Connection, rtype: str, fid: str,
                            include_deleted: bool = True) -> tuple[int, int] | None:
        row = conn.execute(_CURRENT_LOCKED if self._lock_rows else _CURRENT, {"rtype": rtype, "fid": fid}).first()
        if row is None or (row.deleted and not include_deleted):
            return None
        return int(row.pk), int(row.version)

    def _insert_version(self, conn: Connection, pk: int, rtype: str, fid: str, version: int, now: int,
                        deleted: bool, method: str, blob: bytes | None) -> None:
        conn.execute(_INSERT_VERSION, {"resource_pk": pk, "rtype": rtype, "fid": fid, "version": version,
                                       "last_updated": now, "deleted": deleted, "method": method, "body": blob})

    # -- history --------------------------------------------------------------------------------
    def history(self, conn: Connection, *, rtype: str | None = None, fid: str | None = None,
                since: int | None = None, at: tuple[int, int] | None = None, count: int = 50,
                offset: int = 0, snapshot: int | None = None,
                scope: ColumnElement[bool] | None = None) -> tuple[list[StoredResource], int, int]:
        """Versions newest first. Returns (page, total, snapshot) where snapshot bounds later pages.

        ``scope`` is the access policy's condition over ``resource_version`` rows."""
        v = resource_version
        conds = [] if scope is None else [scope]
        if rtype is not None:
            conds.append(v.c.rtype == rtype)
        if fid is not None:
            conds.append(v.c.fid == fid)
        if since is not None:
            conds.append(v.c.last_updated >= since)
        if at is not None:
            low, high = at
            later = resource_version.alias("later")
            conds.append(v.c.last_updated <= high)
            conds.append(~select(later.c.pk).where(
                later.c.resource_pk == v.c.resource_pk, later.c.version > v.c.version,
                later.c.last_updated <= low).exists())
        if snapshot is None:
            snapshot = int(conn.execute(select(func.coalesce(func.max(v.c.pk), 0))).scalar_one())
        conds.append(v.c.pk <= snapshot)
        where = and_(*conds)
        total = int(conn.execute(select(func.count()).select_from(v).where(where)).scalar_one())
        rows = conn.execute(
            select(v).where(where).order_by(v.c.last_updated.desc(), v.c.pk.desc()).limit(count).offset(offset)
        ).all()
        return [self._version_from_row(r) for r in rows], total, snapshot

    # -- maintenance ----------------------------------------------------------------------------
    def create_schema(self) -> None:
        from fhir_gateway.storage.tables import metadata

        metadata.create_all(self.engine)

    def reindex(self, conn: Connection, rtype: str | None = None) -> int:
        """Rebuild index rows from stored bodies (after a search-parameter change)."""
        stmt = select(resource.c.pk, resource.c.rtype, resource.c.fid, resource.c.version, resource.c.body).where(
            resource.c.deleted.is_(False))
        if rtype:
            stmt = stmt.where(resource.c.rtype == rtype)
        n = 0
        for row in conn.execute(stmt).all():
            body = self._decode(row.rtype, row.fid, row.version, row.body)
            if body is None:
                continue
            self.index_writer.clear(conn, row.pk)
            self.index_writer.write(conn, row.pk, row.rtype, body, None)
            n += 1
        return n


