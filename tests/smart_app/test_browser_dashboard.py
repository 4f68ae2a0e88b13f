"""In headless Chromium: the sandbox EHR launches the app as the demo physician (TOTP), for the generic and
the Epic flavours, and the dashboard shows the seeded visits, the waiting room and the patient banner.
Saves docs/screenshots/dashboard.png.

Chromium is Debian's /usr/bin/chromium (never ``playwright install``); without it the test skips locally
and fails under CI=true (``tests.conftest.unavailable``).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest

from tests.smart_app.conftest import LiveApp, serve

pytestmark = pytest.mark.xdist_group("e2e")
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "dashboard.png"


@pytest.fixture(scope="module")
def live_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    yield from serve(Path(tmp_path_factory.mktemp("smart-app-browser")))


@pytest.fixture(scope="session")
def chromium(headless_browser: Any) -> Any:
    """The process's one headless Chromium (tests/conftest.py)."""
    return headless_browser


def _launch(page: Any, live: LiveApp, flavour: str) -> None:
    page.goto(f"{live.origin}/sandbox/")
    page.select_option("#practitioner", live.practitioner)
    conn = page.locator("#patient option", has_text="Liz Conn").get_attribute("value")
    page.select_option("#patient", conn)
    page.check(f"#flavour-{flavour}")
    page.get_by_label("Registered SMART app").select_option(label="Telehub (virtual visits)")
    page.get_by_role("button", name="Launch").click()
    page.wait_for_url(f"{live.origin}/fhir/auth/**")
    if page.locator("input[name=password]").count():  # first launch: Telehub's own sign-in with TOTP
        page.get_by_label("Username").fill(live.username)
        page.get_by_label("Password").fill(live.password)
        page.fill("input[name=otp]", pyotp.TOTP(live.totp_secret).now())
        page.click("form button[type=submit]")
    page.click("button[name=decision][value=allow]")
    page.wait_for_url(f"{live.origin}/app/")


def test_physician_launches_from_the_sandbox_and_sees_the_dashboard(chromium: Any, live_demo: LiveApp) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
    try:
        for flavour in ("generic", "epic"):
            _launch(page, live_demo, flavour)
            assert page.get_by_role("heading", name="Today's virtual visits").is_visible()
            assert page.locator("#visits tbody tr").count() == live_demo.visits_seeded == 5
            assert page.locator("#queue li").count() == 2
            assert page.text_content("#banner-name") == "Mrs. Liz Conn"
            # the EHR's style arrived as CSS variables (sandbox highlight colour)
            highlight = page.evaluate("getComputedStyle(document.documentElement)"
                                      ".getPropertyValue('--color-highlight').trim()")
            assert highlight == "#2b5c8a"
            if flavour == "generic":
                page.screenshot(path=str(SCREENSHOT), full_page=True)
        for width, height in ((768, 1024), (390, 844)):  # tablet and phone: no sideways scrolling
            page.set_viewport_size({"width": width, "height": height})
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), width
        page.set_viewport_size({"width": 1280, "height": 800})
        # keyboard: the skip link comes first, then one click (Enter) opens a visit
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
        first = page.locator("#visits tbody th a").first
        name = first.text_content()
        first.focus()
        page.keyboard.press("Enter")
        page.wait_for_url(f"{live_demo.origin}/app/visits/*")
        assert page.get_by_role("heading", name=f"Visit with {name}").is_visible()
        assert not errors, errors  # no CSP violations or script errors
    finally:
        with contextlib.suppress(Exception):
            context.close()
