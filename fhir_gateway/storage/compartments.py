"""Compartment membership queries over the reference index (https://hl7.org/fhir/R4/compartmentdefinition.html).

A resource is in Patient/123's compartment when one of the compartment's linking
search parameters for its type references Patient/123.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, and_, or_, select

from fhir_gateway.storage.tables import idx_reference, resource


def compartment_pks(conn: Connection, compartment: str, fid: str, links: Mapping[str, Sequence[str]], *,
                    since: int | None = None, types: Sequence[str] | None = None) -> list[int]:
    """Primary keys of live resources in ``compartment/fid``, ordered by type then insertion."""
    wanted = {t: p for t, p in links.items() if p and (types is None or t in types)}
    if not wanted:
        return []
    ref = idx_reference
    member = or_(*(and_(ref.c.rtype == t, ref.c.param.in_(list(params))) for t, params in wanted.items()))
    sub = select(ref.c.resource_pk).where(ref.c.target_type == compartment, ref.c.target_id == fid, member)
    stmt = select(resource.c.pk).where(resource.c.pk.in_(sub), resource.c.deleted.is_(False))
    if since is not None:
        stmt = stmt.where(resource.c.last_updated >= since)
    stmt = stmt.order_by(resource.c.rtype, resource.c.pk)
    return [int(pk) for pk in conn.execute(stmt).scalars()]


def referenced_pks(conn: Connection, pks: Sequence[int], *, exclude_types: Sequence[str] = ()) -> list[int]:
    """Live resources referenced (through any reference search parameter) from the given resources."""
    if not pks:
        return []
    ref = idx_reference
    targets = (select(ref.c.target_type, ref.c.target_id)
               .where(ref.c.resource_pk.in_(list(pks)), ref.c.target_id.is_not(None)).distinct().subquery())
    stmt = (select(resource.c.pk)
            .join(targets, and_(resource.c.rtype == targets.c.target_type, resource.c.fid == targets.c.target_id))
            .where(resource.c.deleted.is_(False)))
    if exclude_types:
        stmt = stmt.where(resource.c.rtype.not_in(list(exclude_types)))
    return [int(pk) for pk in conn.execute(stmt.order_by(resource.c.rtype, resource.c.pk)).scalars()]
