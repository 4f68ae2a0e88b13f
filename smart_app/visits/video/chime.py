"""Amazon Chime SDK Meetings (rest-json, SigV4 signing name ``chime``): CreateMeeting / CreateAttendee.

The browser joins with both the Meeting and the Attendee objects. ``ExternalMeetingId`` and
``ExternalUserId`` are opaque keys, never names or MRNs. The control-plane region (the endpoint) and
``MediaRegion`` (where media is hosted) are configured separately.
"""
from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson
import requests

from smart_app.visits.video.base import Join, Room, Side, VideoError, register
from smart_app.visits.video.sigv4 import Credentials, sign


class ChimeProvider:
    name = "chime"
    phi_capable = True
    boundary = "vendor"
    supports_recording = False  # media capture pipelines are not wired here

    def __init__(self, creds: Credentials, *, region: str = "us-east-1", media_region: str = "us-east-1",
                 baa: bool = False, session: requests.Session | None = None, timeout: float = 10.0) -> None:
        self.creds, self.region, self.media_region, self.baa = creds, region, media_region, baa
        self.endpoint = f"https://meetings-chime.{region}.amazonaws.com"
        self.session = session or requests.Session()
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None, ok: tuple[int, ...] = (200,)
              ) -> dict[str, Any]:
        url = f"{self.endpoint}{path}"
        data = orjson.dumps(body) if body is not None else b""
        headers = {**sign(method, url, data, self.creds, self.region, "chime")}
        if body is not None:
            headers["Content-Type"] = "application/json"
        resp = self.session.request(method, url, data=data or None, headers=headers, timeout=self.timeout)
        if resp.status_code not in ok:
            raise VideoError(self.name, resp.status_code, resp.headers.get("x-amzn-ErrorType", "").split(":")[0]
                             or "unknown")
        result: dict[str, Any] = resp.json() if resp.content else {}
        return result

    def create_room(self, visit_key: str, *, expires_at: int) -> Room:
        meeting = self._call("POST", "/meetings", {
            "ClientRequestToken": str(uuid.uuid4()), "MediaRegion": self.media_region,
            "ExternalMeetingId": visit_key, "MeetingFeatures": {"Attendee": {"MaxCount": 4}}})["Meeting"]
        return Room(self.name, str(meeting["MeetingId"]), data={"meeting": meeting})

    def join(self, room: Room, *, participant_key: str, side: Side, expires_at: int, record: bool) -> Join:
        attendee = self._call("POST", f"/meetings/{room.room_id}/attendees", {
            "ExternalUserId": participant_key,
            "Capabilities": {"Audio": "SendReceive", "Video": "SendReceive", "Content": "SendReceive"}})["Attendee"]
        return Join("chime", {"meeting": dict(room.data).get("meeting", {"MeetingId": room.room_id}),
                              "attendee": attendee})

    def end_room(self, room: Room) -> None:
        self._call("DELETE", f"/meetings/{room.room_id}", ok=(204, 404))


@register("chime")
def _from_config(config: Mapping[str, Any]) -> ChimeProvider:
    creds = Credentials(str(config["access_key"]), str(config["secret_key"]), config.get("session_token"))
    return ChimeProvider(creds, region=str(config.get("region", "us-east-1")),
                         media_region=str(config.get("media_region", config.get("region", "us-east-1"))),
                         baa=bool(config.get("baa", False)))
