"""Outside services (video, SMS/e-mail, pharmacy network, clearinghouse, EHRs) and the PHI guard in front of them."""
from __future__ import annotations

from fhir_gateway.outbound.baa import (
    KNOWN_ADAPTERS,
    AdapterRegistry,
    AdapterSpec,
    BaaAdapter,
    BaaRequired,
    NotPhiCapable,
    OutboundAdapter,
    PhiGuard,
    PhiRefused,
    sends_phi,
)

__all__ = ["KNOWN_ADAPTERS", "AdapterRegistry", "AdapterSpec", "BaaAdapter", "BaaRequired", "NotPhiCapable",
           "OutboundAdapter", "PhiGuard", "PhiRefused", "sends_phi"]
