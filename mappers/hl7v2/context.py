"""Per-message conversion state: options, the resources created so far, and their keys.

Resources are collected here rather than returned up the call chain so that a
Practitioner named in PV1-7 and again in ORC-12 becomes one bundle entry, referenced
from both places (dedup by natural key: identifier, else content).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from mappers.hl7v2.parser.message import Message, Segment

_NS = uuid.UUID("6f1f0b4e-8f73-4d8e-9a53-2d6d0c1d7a10")

Resource = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Options:
    """Clinic-level conversion settings (passed in; never read from globals)."""

    default_offset: str = "Z"
    """Zone applied to v2 timestamps that carry none (FHIR requires one with a time)."""
    placeholder_system: str = "urn:id:"
    """Prefix for identifier/code systems known only by a local v2 name."""
    keep_z_segments: bool = True


def natural_key(resource: Resource) -> str:
    """A stable key: type + first identifier, else type + canonical content hash."""
    rtype = resource["resourceType"]
    for ident in resource.get("identifier", ()):
        if isinstance(ident, dict) and ident.get("value"):
            return f"{rtype}|{ident.get('system', '')}|{ident['value']}"
    body = {k: v for k, v in resource.items() if not k.startswith("_")}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:32]
    return f"{rtype}#{digest}"


def full_url(key: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NS, key)}"


@dataclass
class Context:
    """What one conversion accumulates; mappers receive it and call ``add``."""

    message: Message
    options: Options = field(default_factory=Options)
    resources: list[Resource] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)
    by_url: dict[str, Resource] = field(default_factory=dict)
    group: dict[str, Segment] = field(default_factory=dict)
    """Segments of the current group (by id), for conditions naming a sibling (``OBR-2``)."""

    def add(self, resource: Resource, key: str | None = None) -> str:
        """Register a resource (merging with an equal-keyed one); return its fullUrl."""
        own = resource.get("_key")
        if own is not None and own in self.urls and self.by_url[self.urls[own]] is resource:
            return self.urls[own]
        key = key or own or natural_key(resource)
        url = self.urls.get(key)
        if url is not None:
            existing = self.by_url[url]
            for k, v in resource.items():
                existing.setdefault(k, v)
            return url
        url = full_url(key)
        resource["_key"] = key
        self.urls[key] = url
        self.by_url[url] = resource
        self.resources.append(resource)
        return url

    def ref(self, resource: Resource, key: str | None = None) -> dict[str, str]:
        """Add and return a Reference to it."""
        return {"reference": self.add(resource, key)}
