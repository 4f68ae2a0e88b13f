"""Bulk upsert: many resources in a handful of statements, for imports and large transactions.

Semantics equal one :meth:`Repository.update` per resource (create under the
given id or a new one, new version otherwise, unchanged content skipped), but
the existence check, the resource rows, the version rows and each index table
are one multi-row statement per batch instead of several per resource.
"""
from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, insert, select, update

from fhir_gateway.storage.codec import associated_data
from fhir_gateway.storage.tables import resource, resource_version

if TYPE_CHECKING:
    from fhir_gateway.storage.repository import Repository, StoredResource

CHUNK = 500


def _existing(repo: Repository, conn: Connection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    by_type: dict[str, list[str]] = defaultdict(list)
    for rtype, fid in keys:
        by_type[rtype].append(fid)
    found: dict[tuple[str, str], Any] = {}
    for rtype, fids in by_type.items():
        for start in range(0, len(fids), CHUNK):
            chunk = fids[start:start + CHUNK]
            stmt = select(resource.c.pk, resource.c.fid, resource.c.version, resource.c.deleted,
                          resource.c.last_updated, resource.c.body).where(resource.c.rtype == rtype,
                                                                          resource.c.fid.in_(chunk))
            if conn.dialect.name == "postgresql":
                stmt = stmt.with_for_update()
            for row in conn.execute(stmt):
                found[(rtype, row.fid)] = row
    return found


def bulk_upsert(repo: Repository, conn: Connection, bodies: list[dict[str, Any]], *, skip_unchanged: bool = True,
                method: str = "PUT") -> list[tuple[StoredResource, bool]]:
    """Create or update every body (``id`` chooses the resource; no id: a new one). Order is kept."""
    from fhir_gateway.storage.repository import StoredResource, new_id, same_content

    results: list[tuple[StoredResource, bool] | None] = [None] * len(bodies)
    keys: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    later: list[int] = []  # a second write to the same resource in this batch: done one by one afterwards
    for i, body in enumerate(bodies):
        key = (body["resourceType"], body.get("id") or new_id())
        if key in seen:
            later.append(i)
        else:
            seen.add(key)
        keys.append(key)
    current = _existing(repo, conn, [k for i, k in enumerate(keys) if i not in set(later)])
    later_set = set(later)
    new_rows: list[dict[str, Any]] = []
    new_meta: list[tuple[int, dict[str, Any]]] = []
    upd_rows: list[dict[str, Any]] = []
    upd_meta: list[tuple[int, int, dict[str, Any]]] = []
    for i, body in enumerate(bodies):
        if i in later_set:
            continue
        rtype, fid = keys[i]
        row = current.get((rtype, fid))
        if row is None:
            now = repo.clock.now()
            stamped = repo._stamp(body, fid, 1, now)
            new_rows.append({"rtype": rtype, "fid": fid, "version": 1, "last_updated": now, "deleted": False,
                             "body": repo.codec.encode(stamped, associated_data(rtype, fid, 1))})
            new_meta.append((i, stamped))
            continue
        if skip_unchanged and not row.deleted and row.body is not None:
            existing = repo._decode(rtype, fid, row.version, row.body)
            if existing is not None and same_content(existing, body):
                results[i] = (StoredResource(row.pk, rtype, fid, row.version, row.last_updated, False, existing,
                                             method), False)
                continue
        version = int(row.version) + 1
        now = repo.clock.now()
        stamped = repo._stamp(body, fid, version, now)
        upd_rows.append({"b_pk": row.pk, "b_seen": row.version, "version": version, "last_updated": now,
                         "deleted": False, "body": repo.codec.encode(stamped, associated_data(rtype, fid, version))})
        upd_meta.append((i, int(row.pk), stamped))
    versions: list[dict[str, Any]] = []
    index_items: list[tuple[int, str, dict[str, Any], None]] = []
    if new_rows:
        pks = conn.execute(insert(resource).returning(resource.c.pk, sort_by_parameter_order=True),
                           new_rows).scalars().all()
        for (i, stamped), pk, row in zip(new_meta, pks, new_rows, strict=True):
            results[i] = (StoredResource(int(pk), row["rtype"], row["fid"], 1, row["last_updated"], False, stamped,
                                         method), True)
            versions.append({"resource_pk": pk, "rtype": row["rtype"], "fid": row["fid"], "version": 1,
                             "last_updated": row["last_updated"], "deleted": False, "method": method,
                             "body": row["body"]})
            index_items.append((int(pk), row["rtype"], stamped, None))
    if upd_rows:
        stmt = (update(resource).where(resource.c.pk == bindparam("b_pk"), resource.c.version == bindparam("b_seen"))
                .values(version=bindparam("version"), last_updated=bindparam("last_updated"),
                        deleted=bindparam("deleted"), body=bindparam("body")))
        conn.execute(stmt, upd_rows)
        repo.index_writer.clear_many(conn, [pk for _, pk, _ in upd_meta])
        for (i, pk, stamped), row in zip(upd_meta, upd_rows, strict=True):
            rtype, fid = keys[i]
            results[i] = (StoredResource(pk, rtype, fid, row["version"], row["last_updated"], False, stamped,
                                         method), False)
            versions.append({"resource_pk": pk, "rtype": rtype, "fid": fid, "version": row["version"],
                             "last_updated": row["last_updated"], "deleted": False, "method": method,
                             "body": row["body"]})
            index_items.append((pk, rtype, stamped, None))
    if versions:
        conn.execute(insert(resource_version), versions)
    repo.index_writer.write_many(conn, index_items)
    for i in later:
        rtype, fid = keys[i]
        results[i] = repo.update(conn, {**bodies[i], "id": fid}, fid, skip_unchanged=skip_unchanged, method=method)
    return [r for r in results if r is not None]
