"""The mapping pipeline: a vendor resource → canonical R4 for the hub's store, and back for writes.

Per-type steps are registered in :data:`STEPS` (no per-type branches): Patient gets the canonical
MRN, Appointment the canonical video-link extension. Every resource gets ``meta.source`` (its
vendor URL) and hub ids (see :mod:`.references`).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mappers.vendor.identifiers import MrnRule, add_canonical_mrn, remove_canonical_mrn
from mappers.vendor.provenance import source_url, with_source
from mappers.vendor.references import IdMap, hub_id, rewrite_references
from mappers.vendor.video import VIDEO_LINK, add_video_extension

JSON = dict[str, Any]


@dataclass(frozen=True)
class Dialect:
    """What the mappers need to know of one connection; built from its vendor profile by the gateway."""

    vendor: str
    source_base: str
    mrn_rules: tuple[MrnRule, ...] = ()
    mrn_system: str | None = None  # the hub's MRN system for this clinic
    vendor_code_system: str | None = None
    video_roles: Mapping[str, str] = field(default_factory=dict)
    video_contained_type: str = "HealthcareService"
    video_telecom_system: str = "url"

    def default_ids(self, resource_type: str, vendor_id: str) -> str:
        return hub_id(self.source_base, resource_type, vendor_id)


Step = Callable[[JSON, Dialect], JSON]


def _mrn_in(resource: JSON, dialect: Dialect) -> JSON:
    return add_canonical_mrn(resource, dialect.mrn_rules, dialect.mrn_system) if dialect.mrn_system else resource


def _mrn_out(resource: JSON, dialect: Dialect) -> JSON:
    return remove_canonical_mrn(resource, dialect.mrn_system) if dialect.mrn_system else resource


def _video_in(resource: JSON, dialect: Dialect) -> JSON:
    if not dialect.video_roles:
        return resource
    return add_video_extension(resource, dialect.video_roles, dialect.video_contained_type,
                               dialect.video_telecom_system)


def _video_out(resource: JSON, dialect: Dialect) -> JSON:
    """The vendor sets links by JSON Patch (:func:`~mappers.vendor.video.video_link_patch`), not in the body."""
    kept = [e for e in resource.get("extension") or [] if not (isinstance(e, dict) and e.get("url") == VIDEO_LINK)]
    out = {k: v for k, v in resource.items() if k != "extension"}
    if kept:
        out["extension"] = kept
    return out


# resource type -> (inbound steps, outbound steps)
STEPS: dict[str, tuple[tuple[Step, ...], tuple[Step, ...]]] = {
    "Patient": ((_mrn_in,), (_mrn_out,)),
    "Appointment": ((_video_in,), (_video_out,)),
}


def to_canonical(resource: JSON, dialect: Dialect, id_map: IdMap | None = None) -> JSON:
    """The hub's copy of a vendor resource: source kept, ids mapped, per-type steps applied."""
    rtype, vendor_id = str(resource["resourceType"]), str(resource["id"])
    ids = id_map or dialect.default_ids
    out = with_source(resource, source_url(dialect.source_base, rtype, vendor_id))
    for step in STEPS.get(rtype, ((), ()))[0]:
        out = step(out, dialect)
    out = rewrite_references(out, dialect.source_base, ids)
    out["id"] = ids(rtype, vendor_id) or dialect.default_ids(rtype, vendor_id)
    return out


def to_vendor(resource: JSON, dialect: Dialect, vendor_ids: IdMap) -> JSON:
    """Back-mapping for a write: hub ids → vendor ids (``vendor_ids`` gives None for hub-only ids, which
    then stay as they are), hub metadata and canonical additions removed. No ``id`` when it has none upstream."""
    rtype = str(resource["resourceType"])
    out = {k: v for k, v in resource.items() if k not in ("meta", "id")}
    for step in STEPS.get(rtype, ((), ()))[1]:
        out = step(out, dialect)
    out = rewrite_references(out, "", vendor_ids)
    hub = resource.get("id")
    vendor_id = vendor_ids(rtype, str(hub)) if hub else None
    if vendor_id:
        out["id"] = vendor_id
    return {"resourceType": rtype, **{k: v for k, v in out.items() if k != "resourceType"}}


def vendor_id_from_source(resource: JSON, dialect: Dialect) -> str | None:
    """The vendor id of a hub resource imported from this connection (from ``meta.source``), or None."""
    source = (resource.get("meta") or {}).get("source")
    prefix = f"{dialect.source_base.rstrip('/')}/{resource.get('resourceType')}/"
    if isinstance(source, str) and source.startswith(prefix):
        return source[len(prefix):]
    return None
