"""Vendor ids ⇄ hub ids, and rewriting the references inside a resource accordingly.

Ids are only unique within a vendor's service root (Cerner: "the tenant-qualified URL is the
identity", vendor-notes §3.1), so a hub id is a name-based UUID of (base URL, type, vendor id):
stable across runs (idempotent sync) and distinct across tenants. The vendor's own URL is kept in
``meta.source`` so the mapping can be reversed. https://hl7.org/fhir/R4/references.html
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

JSON = dict[str, Any]
NAMESPACE = uuid.UUID("5b0c4a9e-6f43-4c1d-9a51-2f0f3e6d7a10")  # Telehub upstream ids (fixed forever)
_RELATIVE = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]+)?$")

IdMap = Callable[[str, str], str | None]  # (type, id) -> new id, or None to leave the reference alone


def hub_id(source_base: str, resource_type: str, vendor_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{source_base.rstrip('/')}|{resource_type}|{vendor_id}"))


def split_reference(reference: str, source_base: str) -> tuple[str, str] | None:
    """(type, id) of a relative reference or an absolute one under ``source_base``; None otherwise."""
    base = source_base.rstrip("/") + "/"
    if reference.startswith(base):
        reference = reference[len(base):]
    match = _RELATIVE.match(reference)
    return (match.group(1), match.group(2)) if match else None


def rewrite_references(resource: JSON, source_base: str, id_map: IdMap) -> JSON:
    """A deep copy of ``resource`` whose ``reference`` values point at the ids ``id_map`` gives."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out: JSON = {}
            for key, value in node.items():
                if key == "reference" and isinstance(value, str):
                    parts = split_reference(value, source_base)
                    new = id_map(*parts) if parts else None
                    out[key] = f"{parts[0]}/{new}" if parts and new else value
                else:
                    out[key] = walk(value)
            return out
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    result: JSON = walk(resource)
    return result
