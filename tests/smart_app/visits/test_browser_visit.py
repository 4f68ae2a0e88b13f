"""End to end in two headless Chromium contexts with fake media: the patient joins from a one-time link,
consents and waits; the clinician sees the device check and admits; both reach RTCPeerConnection
``connected`` over the local WebRTC provider and decode frames; chat arrives; the patient's page is
closed and reopened and the visit resumes. Screenshots go to docs/screenshots/.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, session
from werkzeug.serving import make_server

from fhir_gateway.app import create_app
from smart_app.visits.blueprint import make_visits_blueprint
from smart_app.visits.events import InProcessBus
from smart_app.visits.ports import Actor
from smart_app.visits.video.local import LocalWebRTCProvider
from tests.browser import launch
from tests.fhir_gateway.conftest import make_settings
from tests.smart_app.visits.conftest import RequestsHub, seed_visit

pytestmark = pytest.mark.xdist_group("e2e")
SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
MEDIA_ARGS = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
              "--disable-features=WebRtcHideLocalIpsWithMdns")


class _Front:
    def __init__(self) -> None:
        self.hub: Any = None
        self.app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        target = self.app if environ.get("PATH_INFO", "").startswith("/app/") else self.hub
        return target(environ, start_response)


def _session_actor() -> Actor | None:
    role = session.get("role")
    return Actor(role, practitioner_id=session.get("pid")) if role == "provider" else None


@pytest.fixture
def live(sqlite_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    front = _Front()
    server = make_server("127.0.0.1", 0, front, threaded=True)
    origin = f"http://127.0.0.1:{server.server_port}"
    front.hub = create_app(make_settings(sqlite_url, auth="off"))
    hub = RequestsHub(f"{origin}/fhir")
    app = Flask(__name__)
    app.secret_key = "e2e-only"
    app.register_blueprint(make_visits_blueprint(hub, actor=_session_actor, video=LocalWebRTCProvider(),
                                                 events=InProcessBus(), secure_cookies=False, keepalive=5),
                           url_prefix="/app/visits")

    @app.get("/app/test-login/<pid>")
    def login(pid: str) -> str:  # stands in for the EHR launch
        session.update(role="provider", pid=pid)
        return "ok"

    front.app = app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield origin, seed_visit(hub)
    finally:
        server.shutdown()
        thread.join(10)
        front.hub.extensions["telehub.fhir"].repository.engine.dispose()


CONNECTED = "() => window.visitCall && window.visitCall.state() === 'connected'"
FRAMES = """async () => { const pc = window.visitCall.pc(); if (!pc) return 0; let n = 0;
  (await pc.getStats()).forEach(r => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') n += r.framesDecoded || 0; });
  return n; }"""


def test_two_browsers_visit_with_resume(live: tuple[str, dict[str, str]], playwright_driver: Any) -> None:
    origin, ids = live
    hub = RequestsHub(f"{origin}/fhir")
    vid = ids["visit"]
    with launch(playwright_driver, MEDIA_ARGS) as browser:
        doc_ctx = browser.new_context(viewport={"width": 1200, "height": 900})
        pat_ctx = browser.new_context(viewport={"width": 1000, "height": 900})
        doctor = doc_ctx.new_page()
        doctor.goto(f"{origin}/app/test-login/{ids['practitioner']}")
        doctor.goto(f"{origin}/app/visits/{vid}/console")
        doctor.click("#issue-link")
        doctor.wait_for_function("document.getElementById('link').textContent.includes('/join/')")
        link = doctor.inner_text("#link")
        assert vid not in link

        patient = pat_ctx.new_page()
        patient.goto(link)
        patient.wait_for_selector("#status:has-text('Waiting for your clinician')")
        patient.click("#give-consent")
        patient.wait_for_selector("#check-network:has-text('kbit/s')")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        patient.screenshot(path=str(SCREENSHOTS / "visits-waiting-room.png"))

        doctor.wait_for_selector("#precheck:has-text('camera ok')")
        doctor.wait_for_selector("#admit:not([disabled])")
        doctor.click("#admit")
        doctor.wait_for_url(f"**/{vid}/room")
        patient.wait_for_url(f"**/{vid}/room")
        assert doctor.is_disabled("#record")  # no recording consent

        doctor.wait_for_function(CONNECTED, timeout=30000)
        patient.wait_for_function(CONNECTED, timeout=30000)
        doctor.wait_for_function(f"({FRAMES})().then(n => n > 0)", timeout=20000)
        patient.wait_for_function(f"({FRAMES})().then(n => n > 0)", timeout=20000)

        patient.fill("#chat-text", "I can see you")
        patient.click("#chat-form button")
        doctor.wait_for_selector("#messages li:has-text('I can see you')")
        doctor.screenshot(path=str(SCREENSHOTS / "visits-visit-page.png"))

        patient.click("#allow-recording")  # the consent reaches the clinician's page live: record enabled
        doctor.wait_for_selector("#record:not([disabled])")
        doctor.click("#record")
        doctor.wait_for_selector("#record:has-text('Stop recording')")
        doctor.wait_for_timeout(1500)
        doctor.click("#record")
        doctor.wait_for_selector("#record:has-text('Recording saved')")

        patient.close(run_before_unload=True)  # the patient's tab is closed mid-visit …
        doctor.wait_for_function(f"fetch('/app/visits/api/{vid}/state').then(r => r.json())"
                                 ".then(s => s.state === 'on-leave')", timeout=10000)
        patient = pat_ctx.new_page()
        patient.goto(f"{origin}/app/visits/{vid}/room")  # … and reopened: the same visit resumes
        patient.wait_for_function(CONNECTED, timeout=30000)
        doctor.wait_for_function(CONNECTED, timeout=30000)
        patient.wait_for_selector("#messages li:has-text('I can see you')")
        state = doctor.evaluate(f"fetch('/app/visits/api/{vid}/state').then(r => r.json())")
        assert state["state"] == "in-progress"
        media = hub.search("Media", {"subject": f"Patient/{ids['patient']}"})
        assert [m["content"]["contentType"] for m in media] == ["video/webm"] and media[0]["content"]["size"] > 0
        doc_ctx.close()
        pat_ctx.close()
