"""Daily (https://docs.daily.co/reference/rest-api): private rooms + per-participant meeting tokens.

Rooms are private and expire with the visit (``exp`` + ``eject_at_room_exp``); each participant gets a
meeting token bound to the room (``room_name`` and ``exp`` always set: a token without ``room_name``
opens every room of the domain). ``user_id`` is an opaque UUID (HIPAA domains return only UUIDs in
analytics) and no ``user_name`` is sent. Errors branch on Daily's stable ``error`` type.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from smart_app.visits.video.base import Join, Room, Side, VideoError, register

API = "https://api.daily.co/v1"


class DailyProvider:
    name = "daily"
    phi_capable = True
    boundary = "vendor"
    supports_recording = True

    def __init__(self, api_key: str, *, baa: bool = False, api: str = API, session: requests.Session | None = None,
                 timeout: float = 10.0) -> None:
        self.api_key, self.baa, self.api, self.timeout = api_key, baa, api.rstrip("/"), timeout
        self.session = session or requests.Session()

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None, ok: tuple[int, ...] = (200,)
              ) -> dict[str, Any]:
        resp = self.session.request(method, f"{self.api}{path}", json=body, timeout=self.timeout,
                                    headers={"Authorization": f"Bearer {self.api_key}"})
        if resp.status_code not in ok:
            try:
                code = str(resp.json().get("error") or "unknown")
            except ValueError:
                code = "unknown"
            raise VideoError(self.name, resp.status_code, code)
        data: dict[str, Any] = resp.json() if resp.content else {}
        return data

    def create_room(self, visit_key: str, *, expires_at: int) -> Room:
        props = {"exp": expires_at, "eject_at_room_exp": True, "max_participants": 4, "enable_knocking": True,
                 "enable_prejoin_ui": False, "enable_chat": False, "enable_recording": "cloud"}
        room = self._call("POST", "/rooms", {"name": visit_key, "privacy": "private", "properties": props})
        return Room(self.name, str(room["name"]), str(room["url"]))

    def join(self, room: Room, *, participant_key: str, side: Side, expires_at: int, record: bool) -> Join:
        props: dict[str, Any] = {"room_name": room.room_id, "exp": expires_at, "eject_at_token_exp": True,
                                 "is_owner": side == "provider", "user_id": participant_key}
        if side == "provider" and record:
            props["enable_recording"] = "cloud"
        token = self._call("POST", "/meeting-tokens", {"properties": props})["token"]
        return Join("daily", {"url": room.url, "token": token})

    def end_room(self, room: Room) -> None:
        self._call("DELETE", f"/rooms/{room.room_id}", ok=(200, 404))  # 404: already gone or expired


@register("daily")
def _from_config(config: Mapping[str, Any]) -> DailyProvider:
    return DailyProvider(str(config["api_key"]), baa=bool(config.get("baa", False)), api=str(config.get("api", API)))
