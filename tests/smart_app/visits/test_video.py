"""Video adapters: hosted-provider calls replayed from the documented responses in shared/data/video/."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import responses
from responses import matchers

from fhir_gateway.outbound.baa import AdapterRegistry
from smart_app.visits.errors import ProviderRefused
from smart_app.visits.video import sigv4
from smart_app.visits.video.base import REGISTRY, Room, VideoError, VideoProvider, build, require_for_visit
from smart_app.visits.video.chime import ChimeProvider
from smart_app.visits.video.daily import DailyProvider
from smart_app.visits.video.local import LocalWebRTCProvider


def fixture(shared_data: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((shared_data / "video" / name).read_text())
    return data


def replay(rsps: responses.RequestsMock, ex: dict[str, Any], url: str | None = None, **kw: Any) -> None:
    rsps.add(ex["request"]["method"] if "request" in ex else kw.pop("method"), url or ex["request"]["url"],
             json=ex["response"]["body"], status=ex["response"]["status"],
             headers=ex["response"].get("headers"), **kw)


def test_registry_and_protocol() -> None:
    for name in ("daily", "chime", "local-webrtc"):
        provider = build(name, {"api_key": "k", "access_key": "AK", "secret_key": "SK"})
        assert isinstance(provider, VideoProvider)
        assert provider.name == name
        assert provider.name in AdapterRegistry()  # the same names as the BAA registry
    assert "twilio-video" not in REGISTRY  # deliberately not built (see video/README.md)
    with pytest.raises(ValueError):
        build("twilio-video", {})


def test_baa_gate_for_real_visits() -> None:
    with pytest.raises(ProviderRefused):
        require_for_visit(DailyProvider("k", baa=False))
    require_for_visit(DailyProvider("k", baa=False), real_visit=False)  # demo data only
    require_for_visit(DailyProvider("k", baa=True))
    require_for_visit(LocalWebRTCProvider())  # runs inside the hub: no BAA needed
    with pytest.raises(ProviderRefused):
        require_for_visit(ChimeProvider(sigv4.Credentials("AK", "SK")))


def test_daily_room_token_and_delete(shared_data: Path) -> None:
    room_ex = fixture(shared_data, "daily/rooms_post_request_telehealth.json")
    token_ex = fixture(shared_data, "daily/meeting-tokens_post_request_telehealth.json")
    with responses.RequestsMock() as rsps:
        rsps.add("POST", "https://api.daily.co/v1/rooms", json=room_ex["response"]["body"], status=200, match=[
            matchers.header_matcher({"Authorization": "Bearer key"}),
            matchers.json_params_matcher({"name": "visit-2f9a1c", "privacy": "private"}, strict_match=False)])
        rsps.add("POST", "https://api.daily.co/v1/meeting-tokens", json=token_ex["response"]["body"], status=200)
        rsps.add("DELETE", "https://api.daily.co/v1/rooms/visit-2f9a1c", json={"deleted": True,
                                                                               "name": "visit-2f9a1c"})
        daily = DailyProvider("key", baa=True)
        room = daily.create_room("visit-2f9a1c", expires_at=1767229200)
        assert (room.room_id, room.url) == ("visit-2f9a1c", "https://your-domain.daily.co/visit-2f9a1c")
        sent = json.loads(rsps.calls[0].request.body or b"{}")
        assert sent["properties"]["exp"] == 1767229200 and sent["properties"]["eject_at_room_exp"] is True
        join = daily.join(room, participant_key="f81d4fae-7dec-11d0-a765-00a0c91e6bf6", side="provider",
                          expires_at=1767229200, record=False)
        props = json.loads(rsps.calls[1].request.body or b"{}")["properties"]
        assert props["room_name"] == "visit-2f9a1c" and props["exp"] == 1767229200  # never domain-wide
        assert props["is_owner"] is True and "user_name" not in props and "enable_recording" not in props
        assert join.kind == "daily" and join.data["token"] == token_ex["response"]["body"]["token"]
        daily.end_room(room)


@pytest.mark.parametrize("name", ["error_401_authentication.json", "error_429_rate-limit.json",
                                  "error_400_invalid-request_documented.json"])
def test_daily_errors_branch_on_the_error_type(shared_data: Path, name: str) -> None:
    ex = fixture(shared_data, f"daily/{name}")
    with responses.RequestsMock() as rsps:
        rsps.add("POST", "https://api.daily.co/v1/rooms", json=ex["response"]["body"], status=ex["response"]["status"])
        with pytest.raises(VideoError) as err:
            DailyProvider("key").create_room("v", expires_at=1)
    assert (err.value.status, err.value.code) == (ex["response"]["status"], ex["response"]["body"]["error"])


def test_daily_delete_of_a_gone_room_is_fine(shared_data: Path) -> None:
    ex = fixture(shared_data, "daily/rooms_delete_404.json")
    with responses.RequestsMock() as rsps:
        replay(rsps, ex)
        DailyProvider("key").end_room(Room("daily", "no-such-room"))


def test_chime_meeting_attendee_delete_signed(shared_data: Path) -> None:
    meeting = fixture(shared_data, "chime-sdk-meetings/create-meeting_200.json")
    attendee = fixture(shared_data, "chime-sdk-meetings/create-attendee_200.json")
    deleted = fixture(shared_data, "chime-sdk-meetings/delete-meeting_204.json")
    with responses.RequestsMock() as rsps:
        replay(rsps, meeting)
        replay(rsps, attendee)
        rsps.add("DELETE", deleted["request"]["url"], status=204)
        chime = ChimeProvider(sigv4.Credentials("AKIDEXAMPLE", "secret"), region="us-east-1",
                              media_region="eu-central-1", baa=True)
        room = chime.create_room("visit-2f9a1c", expires_at=0)
        assert room.room_id == meeting["response"]["body"]["Meeting"]["MeetingId"]
        body = json.loads(rsps.calls[0].request.body or b"{}")
        assert body["MediaRegion"] == "eu-central-1" and body["ExternalMeetingId"] == "visit-2f9a1c"
        auth = rsps.calls[0].request.headers["Authorization"]
        assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") and "/us-east-1/chime/aws4_request" in auth
        join = chime.join(room, participant_key="opaque-1", side="patient", expires_at=0, record=False)
        assert join.data["attendee"]["JoinToken"] and join.data["meeting"]["MeetingId"] == room.room_id
        chime.end_room(room)


def test_chime_not_found(shared_data: Path) -> None:
    ex = fixture(shared_data, "chime-sdk-meetings/error_404_NotFoundException.json")
    with responses.RequestsMock() as rsps:
        rsps.add("POST", "https://meetings-chime.us-east-1.amazonaws.com/meetings/gone/attendees",
                 json=ex["response"]["body"], status=404, headers=ex["response"]["headers"])
        with pytest.raises(VideoError) as err:
            ChimeProvider(sigv4.Credentials("AK", "SK")).join(Room("chime", "gone"), participant_key="p",
                                                              side="patient", expires_at=0, record=False)
    assert (err.value.status, err.value.code) == (404, "NotFoundException")


def test_minimal_signer_matches_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fallback signer and botocore sign the same request identically (botocore's clock frozen)."""
    pytest.importorskip("botocore")
    import botocore.auth

    moment = datetime(2026, 11, 22, 8, 0, 0, tzinfo=UTC)

    class Frozen(datetime):
        @classmethod
        def utcnow(cls) -> Frozen:
            return cls(2026, 11, 22, 8, 0, 0)

        @classmethod
        def now(cls, tz: Any = None) -> Frozen:
            return cls(2026, 11, 22, 8, 0, 0, tzinfo=tz)

    monkeypatch.setattr(botocore.auth.datetime, "datetime", Frozen)
    creds = sigv4.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "tok")
    url, body = "https://meetings-chime.us-east-1.amazonaws.com/meetings/abc/attendees", b'{"ExternalUserId":"x"}'
    ours = sigv4.sign_minimal("POST", url, body, creds, "us-east-1", "chime", now=moment)
    theirs = sigv4.sign_botocore("POST", url, body, creds, "us-east-1", "chime")
    assert ours["Authorization"] == theirs["Authorization"]
    assert ours["X-Amz-Date"] == theirs["X-Amz-Date"] == "20261122T080000Z"


def test_signing_falls_back_without_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sigv4, "have_botocore", lambda: False)
    headers = sigv4.sign("DELETE", "https://meetings-chime.us-east-1.amazonaws.com/meetings/m1", b"",
                         sigv4.Credentials("AK", "SK"), "us-east-1", "chime")
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AK/")
    assert "SignedHeaders=host;x-amz-date," in headers["Authorization"]
