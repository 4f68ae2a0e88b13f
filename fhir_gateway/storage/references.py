"""Referential integrity: which literal references point at no live resource.

Used by transactions, where the client expects the Bundle to be self-consistent:
a reference to a resource that does not exist fails the whole transaction (404).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import Connection, select

from fhir_gateway.storage.tables import resource

CHUNK = 500


def missing_references(conn: Connection, references: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (type, id) pairs among ``references`` with no live resource, in a query per type and chunk."""
    by_type: dict[str, set[str]] = defaultdict(set)
    for rtype, fid in references:
        by_type[rtype].add(fid)
    missing: set[tuple[str, str]] = set()
    for rtype, ids in by_type.items():
        wanted = sorted(ids)
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start:start + CHUNK]
            found = set(conn.execute(select(resource.c.fid).where(
                resource.c.rtype == rtype, resource.c.fid.in_(chunk), resource.c.deleted.is_(False))).scalars())
            missing.update((rtype, fid) for fid in chunk if fid not in found)
    return missing
