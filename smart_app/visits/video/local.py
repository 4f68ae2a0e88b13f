"""The built-in local WebRTC provider: browser to browser, signaling through the app's event bus.

No third party sees anything: SDP offers/answers and ICE candidates pass through the hub's event bus
(``/signal`` endpoints of the blueprint), media flows peer to peer, DTLS-SRTP encrypted. STUN/TURN
servers are configurable (``ice_servers``); a third-party TURN relay sees only encrypted media.
Recording (with the patient's consent) happens in the clinician's browser and is stored in the hub.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from smart_app.visits.video.base import Join, Room, Side, register


class LocalWebRTCProvider:
    name = "local-webrtc"
    baa = False  # inside the hub boundary: it needs none (fhir_gateway.outbound.baa)
    phi_capable = True
    boundary = "hub"

    def __init__(self, ice_servers: Sequence[Mapping[str, Any]] = (), *, recording: bool = True) -> None:
        self.ice_servers = [dict(s) for s in ice_servers]
        # the clinician's browser records (MediaRecorder) and uploads to the hub: nothing leaves the hub
        self.supports_recording = recording

    def create_room(self, visit_key: str, *, expires_at: int) -> Room:
        return Room(self.name, visit_key)

    def join(self, room: Room, *, participant_key: str, side: Side, expires_at: int, record: bool) -> Join:
        # the provider side makes the offer, so a rejoining patient always gets a fresh offer
        return Join("local", {"room": room.room_id, "polite": side == "patient", "iceServers": self.ice_servers,
                              "recordInBrowser": self.supports_recording})

    def end_room(self, room: Room) -> None:
        return None


@register("local-webrtc")
def _from_config(config: Mapping[str, Any]) -> LocalWebRTCProvider:
    return LocalWebRTCProvider(config.get("ice_servers", ()), recording=bool(config.get("recording", True)))
