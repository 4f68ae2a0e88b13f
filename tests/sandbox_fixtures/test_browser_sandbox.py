"""A newcomer's click-through in headless Chromium: sandbox EHR → Telehub login (TOTP) → consent →
the launch inspector showing the patient, with the Epic flavour switched on.

One live werkzeug server (a thread, a free port) serves the hub with the sandbox mounted, exactly as
``telehub demo`` composes them. Chromium is Debian's /usr/bin/chromium (never ``playwright install``);
without it the test skips locally and fails under CI=true (``tests.conftest.unavailable``).
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
from werkzeug.serving import make_server

from fhir_gateway.app import create_app
from fhir_gateway.demo import PHYSICIAN, seed_demo_data, seed_demo_users
from fhir_gateway.settings import Settings
from tests.sandbox_fixtures.conftest import make_settings

pytestmark = pytest.mark.xdist_group("e2e")


@dataclass
class LiveSandbox:
    origin: str
    username: str
    password: str
    totp_secret: str


class _Front:
    """Lets the server pick its port before the app (whose base URL names the port) exists."""

    app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def live_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSandbox]:
    from sandbox_fixtures.sandbox.wsgi import mount

    front = _Front()
    server = make_server("127.0.0.1", 0, front, threaded=True)
    origin = f"http://127.0.0.1:{server.server_port}"
    base = make_settings(Path(tmp_path_factory.mktemp("sandbox-browser")))
    settings = Settings(**{**base.__dict__, "base_url": f"{origin}/fhir"})
    seed_demo_data(settings)
    hub = create_app(settings)
    front.app = mount(hub)
    physician = next(u for u in seed_demo_users(settings) if u.username == PHYSICIAN)  # as `telehub demo` does
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield LiveSandbox(origin, physician.username, physician.password or "", physician.totp_secret or "")
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
        hub.extensions["telehub.fhir"].repository.engine.dispose()


@pytest.fixture(scope="session")
def chromium(headless_browser: Any) -> Any:
    """The process's one headless Chromium (tests/conftest.py)."""
    return headless_browser


def test_sandbox_to_inspector_click_through(chromium: Any, live_sandbox: LiveSandbox) -> None:
    context = chromium.new_context()
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto(f"{live_sandbox.origin}/sandbox/")
        assert "Launch a SMART app" in page.title()
        conn = page.locator("#patient option", has_text="Liz Conn").get_attribute("value")
        page.select_option("#patient", conn)
        page.check("#flavour-epic")  # accessible names: every control has a label
        page.get_by_label("Registered SMART app").select_option(label="Launch inspector (sandbox demo app)")
        page.get_by_role("button", name="Launch").click()

        page.wait_for_selector("form input[name=username]")  # Telehub's own login page
        assert page.url.startswith(f"{live_sandbox.origin}/fhir/auth/")
        page.fill("input[name=username]", live_sandbox.username)
        page.fill("input[name=password]", live_sandbox.password)
        page.fill("input[name=otp]", pyotp.TOTP(live_sandbox.totp_secret).now())
        page.click("form button[type=submit]")

        page.wait_for_selector("button[name=decision][value=allow]")
        assert "Launch inspector" in page.content()
        page.click("button[name=decision][value=allow]")

        page.wait_for_url(f"{live_sandbox.origin}/sandbox/inspector/callback*")
        assert page.text_content("#patient-name") == "Mrs. Liz Conn"
        assert page.text_content("#iss") == f"{live_sandbox.origin}/sandbox/epic/api/FHIR/R4"
        assert page.text_content("td[data-field=patient]") == f'"{conn}"'
        assert page.text_content("td[data-field=need_patient_banner]") == '"true"'  # Epic: a string
        assert page.locator("td[data-field='__epic.dstu2.patient']").count() == 1
    finally:
        with contextlib.suppress(Exception):
            context.close()
