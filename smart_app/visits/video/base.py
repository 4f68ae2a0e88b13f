"""The video-provider adapter interface, its registry, and the BAA gate for real visits.

Each provider declares the facts of :class:`fhir_gateway.outbound.baa.OutboundAdapter` (``name``,
``baa``, ``phi_capable``, ``boundary``). A visit's audio/video is PHI, so :func:`require_for_visit`
refuses a vendor without a BAA before any room is created (demo visits may opt out explicitly).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from fhir_gateway.outbound.baa import PhiGuard, PhiRefused
from smart_app.visits.errors import ProviderRefused

Side = Literal["patient", "provider"]


@dataclass(frozen=True)
class Room:
    """A provider's room for one visit; ``room_id`` is opaque (never a name or an MRN)."""

    provider: str
    room_id: str
    url: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)

    def key(self) -> str:
        return f"{self.provider}:{self.room_id}"


@dataclass(frozen=True)
class Join:
    """What the browser needs to join: ``kind`` selects the client script, ``data`` its parameters."""

    kind: str
    data: Mapping[str, Any]


@runtime_checkable
class VideoProvider(Protocol):
    name: str
    baa: bool
    phi_capable: bool
    boundary: str
    supports_recording: bool

    def create_room(self, visit_key: str, *, expires_at: int) -> Room:
        """A room for the visit identified by the opaque ``visit_key``, closing at ``expires_at`` (unix s)."""
        ...

    def join(self, room: Room, *, participant_key: str, side: Side, expires_at: int, record: bool) -> Join: ...

    def end_room(self, room: Room) -> None: ...


class VideoError(Exception):
    """A provider call failed; ``code`` is the provider's stable error type, never free text."""

    def __init__(self, provider: str, status: int, code: str) -> None:
        super().__init__(f"{provider} answered {status} ({code})")
        self.provider, self.status, self.code = provider, status, code


def require_for_visit(provider: VideoProvider, *, real_visit: bool = True) -> None:
    """Refuse a provider that may not carry PHI for a real visit (fhir_gateway.outbound.baa)."""
    if not real_visit:
        return
    try:
        PhiGuard.require_baa(provider, purpose="video visit")
    except PhiRefused as exc:
        raise ProviderRefused(f"video provider {provider.name!r} may not carry a real visit: {exc.reason}") from None


Factory = Callable[[Mapping[str, Any]], VideoProvider]
REGISTRY: dict[str, Factory] = {}


def register(name: str) -> Callable[[Factory], Factory]:
    def add(factory: Factory) -> Factory:
        if name in REGISTRY:
            raise ValueError(f"video provider {name!r} already registered")
        REGISTRY[name] = factory
        return factory
    return add


def build(name: str, config: Mapping[str, Any]) -> VideoProvider:
    """The provider ``name`` from a clinic's settings (``baa`` comes from the deployment, default False)."""
    from smart_app.visits.video import chime, daily, local  # noqa: F401  (registers the providers)

    try:
        return REGISTRY[name](config)
    except KeyError:
        raise ValueError(f"unknown video provider {name!r} (known: {', '.join(sorted(REGISTRY))})") from None
