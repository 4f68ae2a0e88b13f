"""SMART App Launch in a real browser: the npm ``fhirclient`` (SMART's JavaScript client) in headless
Chromium, driven by Playwright through Telehub's own login and consent pages.

Each test opens ``/app/launch.html`` (``FHIR.oauth2.authorize``), signs in on the real login page,
answers the real consent page, and lands on ``/app/index.html`` (``FHIR.oauth2.ready``), which reads
the record with the token it got and writes what it found into the DOM.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from tests.e2e.conftest import PASSWORD, Live

pytestmark = pytest.mark.xdist_group("e2e")


def launch_url(live: Live, origin: str | None = None, **params: str) -> str:
    return f"{origin or live.origin}/app/launch.html?" + urlencode({"iss": live.base_url, **params})


def sign_in(page: Any, live: Live, username: str, otp: str | None = None) -> None:
    """The Telehub login page: username, password and (for a user with TOTP) the current one-time code."""
    page.wait_for_selector("form input[name=username]")
    assert page.url.startswith(f"{live.base_url}/auth/"), page.url  # Telehub's own page, not the app's
    assert "Sign in" in page.title()
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    if page.locator("input[name=otp]").count():
        page.fill("input[name=otp]", live.otp(username) if otp is None else otp)
    page.click("form button[type=submit]")


def consent(page: Any, decision: str) -> None:
    page.wait_for_selector(f"button[name=decision][value={decision}]")
    assert "Allow access?" in page.title()
    assert "E2E browser app" in page.content()  # the registered client name is shown
    page.click(f"button[name=decision][value={decision}]")


def app_result(page: Any, live: Live) -> dict[str, str]:
    """Wait for index.html to finish, then read what it put in the DOM."""
    page.wait_for_url(f"{live.origin}/app/index.html*")
    page.wait_for_selector("body[data-state=ready], body[data-state=error]")
    ids = ("patient-id", "patient-name", "observation-count", "condition-count", "encounter-id", "encounter-status",
           "banner", "fhir-user", "scope", "other-status", "error")
    shown = {i: page.text_content(f"#{i}") or "" for i in ids}
    shown["state"] = page.get_attribute("body", "data-state") or ""
    return shown


def test_standalone_patient_launch(page: Any, live: Live) -> None:
    live.add_user("e2e-peter", "patient", patient=live.seed.patient)
    page.goto(launch_url(live, other=live.seed.other_patient,
                         scope="openid fhirUser launch/patient patient/*.rs"))
    sign_in(page, live, "e2e-peter")
    consent(page, "allow")
    shown = app_result(page, live)
    assert shown["state"] == "ready", (shown, page.console_log)
    assert shown["error"] == ""
    assert shown["patient-id"] == live.seed.patient
    assert shown["patient-name"] == "Peter Chalmers"
    assert shown["observation-count"] == str(live.seed.observations)
    assert shown["condition-count"] == "1"
    assert shown["fhir-user"] == f"Patient/{live.seed.patient}"  # from the id_token (openid fhirUser)
    assert shown["banner"] == "false"  # a standalone launch: the app shows its own banner
    assert shown["encounter-id"] == ""
    # The token was issued for Peter only: another patient's record is refused, inside the page.
    assert shown["other-status"] in ("403", "404"), shown
    # fhirclient dropped the one-time code from the app's URL once it had exchanged it.
    assert "code=" not in page.url


def test_ehr_launch_with_patient_and_encounter_context(page: Any, live: Live, backend_token: Any) -> None:
    seed = live.seed
    # TOTP is mandatory for physicians: the store enrols them and hands back the secret (an authenticator app's).
    totp = live.add_user("e2e-house", "physician", fhir_user=f"Practitioner/{seed.practitioner}")
    # The EHR (a backend-services client with the `launch` scope) registers the launch context.
    token = backend_token("system/*.rs launch")
    resp = requests.post(f"{live.base_url}/auth/launch", timeout=30, headers={"Authorization": f"Bearer {token}"},
                         json={"patient": seed.patient, "encounter": seed.encounter,
                               "fhirUser": f"Practitioner/{seed.practitioner}", "need_patient_banner": True})
    assert resp.status_code == 201, resp.text
    launch = resp.json()["launch"]

    page.goto(launch_url(live, launch=launch, scope="openid fhirUser launch user/*.rs"))
    if totp:  # physicians must give a second factor: the password alone is refused
        sign_in(page, live, "e2e-house", otp="")
        page.wait_for_selector("[role=alert]")
        assert page.locator("button[name=decision]").count() == 0
    sign_in(page, live, "e2e-house")
    consent(page, "allow")
    shown = app_result(page, live)
    assert shown["state"] == "ready", (shown, page.console_log)
    assert shown["patient-id"] == seed.patient
    assert shown["encounter-id"] == seed.encounter
    assert shown["banner"] == "true"
    assert shown["patient-name"] == "Peter Chalmers"
    assert shown["encounter-status"] == "in-progress"
    assert shown["observation-count"] == str(seed.observations)
    assert shown["fhir-user"] == f"Practitioner/{seed.practitioner}"
    assert "launch" in shown["scope"].split() and "user/*.rs" in shown["scope"].split()
    # The launch id is single-use: a second authorize with it goes back to the app with an error.
    # (fhirclient's ready() rejects; the page shows it.)
    page.context.clear_cookies()
    page.goto(launch_url(live, launch=launch, scope="openid fhirUser launch user/*.rs"))
    again = app_result(page, live)
    assert again["state"] == "error" and "launch" in again["error"], again


def test_deny_returns_access_denied_to_the_app(page: Any, live: Live) -> None:
    live.add_user("e2e-lan", "patient", patient=live.seed.other_patient)
    page.goto(launch_url(live))
    sign_in(page, live, "e2e-lan")
    consent(page, "deny")
    shown = app_result(page, live)
    assert shown["state"] == "error", (shown, page.console_log)
    assert "access_denied" in shown["error"], shown
    assert shown["patient-id"] == ""  # no token, no context


def test_wrong_password_stays_on_the_login_page(page: Any, live: Live) -> None:
    page.goto(launch_url(live))
    page.wait_for_selector("form input[name=username]")
    page.fill("input[name=username]", "e2e-nobody")
    page.fill("input[name=password]", "not the password at all")
    page.click("form button[type=submit]")
    page.wait_for_selector("[role=alert]")
    assert (page.text_content("[role=alert]") or "").strip()  # an error is shown …
    assert page.url.startswith(f"{live.base_url}/auth/"), page.url  # … on Telehub's page, not the app's
    assert page.locator("input[name=password]").count() == 1
    assert page.locator("button[name=decision]").count() == 0


# ------------------------------------------------------------------ page security and cross-origin use


def test_login_page_styles_are_not_blocked_by_its_csp(page: Any, live: Live) -> None:
    page.goto(launch_url(live))
    page.wait_for_selector("form input[name=username]")
    blocked = [line for line in page.console_log if "Content Security Policy" in line]
    assert blocked == []
    assert "system-ui" in page.evaluate("getComputedStyle(document.body).fontFamily")


def test_app_on_another_origin_can_read_with_its_token(page: Any, live: Live) -> None:
    client_id = "e2e-js-elsewhere"
    live.auth.clients.add(client_id, client_type="public", name="E2E browser app",
                          redirect_uris=[f"{live.cross_origin}/app/index.html"],
                          scope="openid fhirUser launch/patient patient/*.rs")
    live.add_user("e2e-peter-elsewhere", "patient", patient=live.seed.patient)
    page.goto(launch_url(live, origin=live.cross_origin, client_id=client_id))
    sign_in(page, live, "e2e-peter-elsewhere")
    consent(page, "allow")
    page.wait_for_url(f"{live.cross_origin}/app/index.html*")
    page.wait_for_selector("body[data-state=ready], body[data-state=error]")
    assert page.text_content("#patient-id") == live.seed.patient  # the token exchange itself works cross-origin
    assert page.get_attribute("body", "data-state") == "ready", (page.text_content("#error"), page.console_log)
    assert page.text_content("#patient-name") == "Peter Chalmers"
