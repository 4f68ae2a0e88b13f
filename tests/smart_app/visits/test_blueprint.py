"""The blueprint over the in-process hub: pages, join-link cookies, actions, SSE, chat, documents, recording."""
from __future__ import annotations

import io
from typing import Any

import pytest
import redis
from flask import Flask, request
from flask.testing import FlaskClient

from smart_app.visits.blueprint import make_visits_blueprint
from smart_app.visits.events import InProcessBus, RedisBus
from smart_app.visits.ports import Actor
from smart_app.visits.service import VisitSettings
from smart_app.visits.video.local import LocalWebRTCProvider
from tests.smart_app.visits.conftest import Clock

PREFIX = "/app/visits"


def header_actor() -> Actor | None:
    """Stands in for the app's session: tests say who they are in headers."""
    role = request.headers.get("X-Test-Role")
    if role == "provider":
        return Actor("provider", practitioner_id=request.headers.get("X-Test-Id"))
    if role == "patient":
        return Actor("patient", patient_id=request.headers.get("X-Test-Id"))
    return None


@pytest.fixture
def app(hub: Any, clock: Clock) -> Flask:
    app = Flask(__name__)
    bp = make_visits_blueprint(hub, actor=header_actor, video=LocalWebRTCProvider(), events=InProcessBus(),
                               settings=VisitSettings(clock=clock), secure_cookies=False, keepalive=0.05)
    app.register_blueprint(bp, url_prefix=PREFIX)
    return app


@pytest.fixture
def doctor(app: Flask, ids: dict[str, str]) -> FlaskClient:
    client = app.test_client()
    client.environ_base.update({"HTTP_X_TEST_ROLE": "provider", "HTTP_X_TEST_ID": ids["practitioner"]})
    return client


def api(ids: dict[str, str], path: str) -> str:
    return f"{PREFIX}/api/{ids['visit']}/{path}"


def link_for(doctor: FlaskClient, ids: dict[str, str]) -> str:
    resp = doctor.post(api(ids, "link"), json={})
    assert resp.status_code == 201 and resp.headers["Cache-Control"] == "no-store"
    url = str(resp.get_json()["url"])
    assert ids["visit"] not in url and ids["patient"] not in url
    return url.split("localhost", 1)[1]


def test_join_link_flow_and_single_device(app: Flask, doctor: FlaskClient, ids: dict[str, str]) -> None:
    path = link_for(doctor, ids)
    phone = app.test_client()
    resp = phone.get(path)
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/{ids['visit']}/waiting")
    cookies = resp.headers.getlist("Set-Cookie")
    assert all("HttpOnly" in c and "SameSite=Strict" in c and f"Path={PREFIX}/" in c for c in cookies)
    page = phone.get(f"{PREFIX}/{ids['visit']}/waiting")
    assert page.status_code == 200 and b"Waiting room" in page.data and page.headers["Cache-Control"] == "no-store"
    assert phone.post(api(ids, "action/arrive"), json={}).get_json()["state"] == "waiting"
    laptop = app.test_client()
    assert laptop.get(path).status_code == 403  # the link is bound to the phone
    assert laptop.get(f"{PREFIX}/{ids['visit']}/waiting").status_code == 403
    assert phone.post(api(ids, "action/admit"), json={}).status_code == 403  # a patient cannot admit


def test_visit_through_the_api(app: Flask, doctor: FlaskClient, ids: dict[str, str]) -> None:
    patient = app.test_client()
    patient.environ_base.update({"HTTP_X_TEST_ROLE": "patient", "HTTP_X_TEST_ID": ids["patient"]})
    stranger = app.test_client()
    stranger.environ_base.update({"HTTP_X_TEST_ROLE": "patient", "HTTP_X_TEST_ID": "someone-else"})
    assert stranger.get(api(ids, "state")).status_code == 403

    stream = doctor.get(api(ids, "events"))
    assert stream.mimetype == "text/event-stream"
    raw = iter(stream.response)

    class Frames:
        def __next__(self) -> str:
            item = next(raw)
            return item.decode() if isinstance(item, bytes) else str(item)

    frames = Frames()
    assert '"state":"booked"' in next(frames)

    patient.post(api(ids, "action/arrive"), json={})
    patient.post(api(ids, "precheck"), json={"camera": True, "microphone": True, "bandwidthKbps": 2400,
                                             "rttMs": 40, "name": "ignored"})
    refused = doctor.post(api(ids, "action/admit"), json={})
    assert refused.status_code == 422 and refused.get_json()["error"] == "consent-required"
    assert patient.post(api(ids, "consent/treatment"), json={}).status_code == 201
    assert doctor.post(api(ids, "action/admit"), json={}).get_json()["state"] == "in-progress"
    seen = "".join(next(frames) for _ in range(5))
    assert '"state":"waiting"' in seen and '"bandwidthKbps":2400' in seen and '"state":"in-progress"' in seen
    assert "ignored" not in seen

    join = doctor.get(api(ids, "join")).get_json(force=True)
    assert join["kind"] == "local" and join["polite"] is False
    patient.post(api(ids, "signal"), json={"kind": "hello", "session": "s1"})
    assert '"kind":"hello"' in next(frames)

    room = doctor.get(f"{PREFIX}/{ids['visit']}/room").data.decode()
    assert 'id="record"' in room and 'disabled' in room.split('id="record"')[1].split(">")[0]
    assert doctor.post(api(ids, "recording"), json={}).get_json()["error"] == "consent-required"

    assert patient.post(api(ids, "chat"), json={"text": "hello doctor"}).status_code == 201
    assert [m["text"] for m in doctor.get(api(ids, "chat")).get_json()["messages"]] == ["hello doctor"]
    up = doctor.post(api(ids, "documents"), data={"kind": "care-plan", "file": (io.BytesIO(b"plan"), "plan.txt",
                                                                                "text/plain")},
                     content_type="multipart/form-data")
    assert up.status_code == 201, up.json
    listed = patient.get(api(ids, "documents")).get_json()["documents"]
    assert [d["title"] for d in listed] == ["plan.txt"]
    got = patient.get(api(ids, f"documents/{listed[0]['id']}"))
    assert got.data == b"plan" and got.mimetype == "text/plain"

    stream.close()  # the browser goes away: the subscription is closed
    assert doctor.post(api(ids, "action/finish"), json={}).get_json()["state"] == "finished"
    summary = patient.get(f"{PREFIX}/{ids['visit']}/summary").data.decode()
    assert "Chat messages: 1" in summary and "Documents shared: 1" in summary


def test_running_late_and_bad_actions(app: Flask, doctor: FlaskClient, ids: dict[str, str]) -> None:
    assert doctor.post(api(ids, "action/running-late"), json={"minutes": 10}).get_json()["runningLate"] == 10
    assert doctor.post(api(ids, "action/teleport"), json={}).status_code == 404
    bad = doctor.post(api(ids, "action/finish"), json={})
    assert bad.status_code == 409 and bad.get_json()["error"] == "invalid-transition"
    cross = doctor.post(api(ids, "action/running-late"), json={}, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403


def test_pages_render_for_each_side(app: Flask, doctor: FlaskClient, ids: dict[str, str]) -> None:
    console = doctor.get(f"{PREFIX}/{ids['visit']}/console")
    assert console.status_code == 200 and b"Admit the patient" in console.data
    assert doctor.get(f"{PREFIX}/{ids['visit']}/waiting").status_code == 403  # the waiting room is the patient's
    js = doctor.get(f"{PREFIX}/static/room.js")
    assert js.status_code == 200 and b"getStats" in js.data
    js.close()


def test_two_workers_agree_over_redis(hub: Any, clock: Clock, ids: dict[str, str], redis_url: str,
                                      redis_key_prefix: str) -> None:
    """A patient's arrival on worker A reaches the clinician's event stream on worker B."""
    workers = []
    for _ in range(2):
        app = Flask(__name__)
        app.register_blueprint(make_visits_blueprint(
            hub, actor=header_actor, video=LocalWebRTCProvider(), settings=VisitSettings(clock=clock),
            events=RedisBus(redis.Redis.from_url(redis_url), prefix=redis_key_prefix), keepalive=0.2),
            url_prefix=PREFIX)
        workers.append(app.test_client())
    worker_a, worker_b = workers
    stream = worker_b.get(api(ids, "events"), headers={"X-Test-Role": "provider", "X-Test-Id": ids["practitioner"]})
    frames = iter(stream.response)
    assert b'"state":"booked"' in next(frames)
    worker_a.post(api(ids, "action/arrive"), json={}, headers={"X-Test-Role": "patient", "X-Test-Id": ids["patient"]})
    seen = b""
    for _ in range(5):
        seen += bytes(next(frames))  # type: ignore[arg-type]
        if b'"state":"waiting"' in seen:
            break
    stream.close()
    assert b'"state":"waiting"' in seen
