"""Per-clinic settings of outbound messages: who we are, who receives, which v2 version.

Data, not code: a clinic's interface engine agrees these with us once, and they are
loaded from settings (``OutboundConfig.from_mapping``).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

# 2.7 is left out: hl7apy 1.3.5's 2.7 tables cannot build TQ1 (its CQ/RPT references are empty)
VERSIONS = ("2.5.1", "2.6", "2.8")


@dataclass(frozen=True)
class OutboundConfig:
    version: str = "2.5.1"
    sending_application: str = "TELEHUB"
    sending_facility: str = "TELEHUB"
    receiving_application: str = ""
    receiving_facility: str = ""
    processing_id: str = "P"  # P production, T training, D debugging (HL7 table 0103)
    # identifier system URI -> assigning authority namespace (CX-4.1), e.g. {"urn:oid:1.2.3": "CLINIC"}
    namespaces: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.version not in VERSIONS:
            raise ValueError(f"unsupported outbound HL7 version {self.version!r} (one of {', '.join(VERSIONS)})")
        if self.processing_id not in ("P", "T", "D"):
            raise ValueError("processing_id is P, T or D")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> OutboundConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown outbound settings: {', '.join(sorted(unknown))}")
        return cls(**dict(values))
