"""What an outbound builder reads: the changed resource and the resources it references."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mappers.hl7v2.outbound.config import OutboundConfig


@dataclass(frozen=True)
class Change:
    """A resource as written, the version before it (None for a create) and its referenced resources,
    keyed by ``Type/id`` (or by the fullUrl they had in a Bundle)."""

    resource: Mapping[str, Any]
    previous: Mapping[str, Any] | None = None
    related: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def resolve(self, reference: Any) -> dict[str, Any] | None:
        if not isinstance(reference, Mapping):
            return None
        ref = reference.get("reference")
        if not isinstance(ref, str):
            return None
        found = self.related.get(ref)
        if found is None and "/_history/" in ref:
            found = self.related.get(ref.split("/_history/")[0])
        if found is None and ref.count("/") > 1:
            found = self.related.get("/".join(ref.split("/")[-2:]))
        return dict(found) if found is not None else None


@dataclass(frozen=True)
class Build:
    """Everything a message builder needs; ``now`` and ``control_id`` are passed in (pure)."""

    change: Change
    config: OutboundConfig
    control_id: str
    now: str  # v2 DTM
