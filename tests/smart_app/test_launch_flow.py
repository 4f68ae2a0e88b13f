"""The launch, end to end against a live hub + sandbox EHR: every flavour reaches the dashboard; every
failure is a page saying what happened and what to do (never a stack trace)."""
from __future__ import annotations

import re
import time

import pytest
import requests

from tests.smart_app.conftest import Browser, LiveApp, form_fields, session_record

FLAVOUR_ISS = {"generic": "/fhir", "epic": "/sandbox/epic/api/FHIR/R4",
               "cerner": "/sandbox/cerner/r4/ec2458f2-1e24-41c8-b71b-0e701af7583d",
               "athena": "/sandbox/athena/fhir/r4"}


def problem_of(resp: requests.Response) -> str | None:
    found = re.search(r'data-problem="([^"]+)"', resp.text)
    return found.group(1) if found else None


def assert_clean_problem(resp: requests.Response, code: str, status: int) -> None:
    assert resp.status_code == status, resp.text[:500]
    assert problem_of(resp) == code
    assert "What to do:" in resp.text and "Traceback" not in resp.text
    assert resp.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("flavour", ["generic", "epic", "cerner", "athena"])
def test_ehr_launch_reaches_the_dashboard(browser: Browser, live_app: LiveApp, flavour: str) -> None:
    resp = browser.launch(flavour=flavour)
    assert resp.status_code == 200 and resp.url == f"{live_app.origin}/app/"
    assert len(re.findall(r'<tr data-visit=', resp.text)) == live_app.visits_seeded == 5
    assert re.search(r'id="banner-name">Mrs\. Liz Conn<', resp.text)
    record = session_record(browser)
    assert record["iss"] == live_app.origin + FLAVOUR_ISS[flavour]
    assert record["practitioner"] == live_app.practitioner
    # matched by identifier to the same hub record: nothing duplicated
    assert record["hub_patient"] == live_app.patients["Conn"]
    assert len(live_app.fhir("Patient", family="Conn")["entry"]) == 1
    assert record["context"]["need_patient_banner"] is True


def test_epic_banner_flag_arrives_as_a_string_and_false_hides_the_banner(browser: Browser) -> None:
    resp = browser.launch(flavour="epic", banner=False)
    assert resp.status_code == 200 and 'id="patient-banner"' not in resp.text
    record = session_record(browser)
    assert record["context"]["need_patient_banner"] is False
    assert record["context"]["extras"]["deptID"] == "490771"  # unknown vendor keys kept
    assert "__epic.dstu2.patient" in record["context"]["extras"]


def test_bool_banner_flag_false_hides_the_banner(browser: Browser) -> None:
    resp = browser.launch(flavour="cerner", banner=False)
    assert resp.status_code == 200 and 'id="patient-banner"' not in resp.text
    assert session_record(browser)["context"]["need_patient_banner"] is False


def test_standalone_provider_launch(browser: Browser, live_app: LiveApp) -> None:
    page = browser.sign_in(browser.get(f"/app/launch?iss={live_app.origin}/fhir"))
    assert "launch" not in dict(form_fields(page.text)).get("scope", "")
    resp = browser.consent(page)
    assert resp.status_code == 200 and resp.url == f"{live_app.origin}/app/"
    assert 'id="patient-banner"' not in resp.text and "Today's virtual visits" in resp.text
    assert session_record(browser)["context"]["patient"] is None


def test_visit_detail_and_queue(browser: Browser, live_app: LiveApp) -> None:
    dash = browser.launch(flavour="generic")
    visit = re.search(r'<tr data-visit="([^"]+)" data-status="arrived"', dash.text)
    assert visit
    detail = browser.get(f"/app/visits/{visit.group(1)}")
    assert detail.status_code == 200 and "Visit with" in detail.text and "Waiting" in detail.text
    queue = browser.get("/app/queue")
    assert queue.status_code == 200 and queue.text.count("<li data-visit=") == 2
    assert_clean_problem(browser.get("/app/visits/no-such-visit"), "visit_not_found", 404)


def test_pages_are_frameable_by_the_ehr_only_and_use_a_csp_nonce(browser: Browser) -> None:
    dash = browser.launch(flavour="generic")
    csp = dash.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce and f'nonce="{nonce.group(1)}"' in dash.text
    assert "frame-ancestors 'self'" in csp and "X-Frame-Options" not in dash.headers
    assert "--color-highlight: #2b5c8a" in dash.text  # the sandbox's smart_style_url, applied
    cookie = next(c for c in browser.session.cookies if c.name == "telehub_app_sid")
    assert cookie.has_nonstandard_attr("HttpOnly") and len(cookie.value or "") < 64
    assert dash.headers["Cache-Control"] == "no-store"


def test_ehr_token_is_refreshed_before_it_expires(browser: Browser) -> None:
    browser.launch(flavour="generic")
    sid = browser.session.cookies.get("telehub_app_sid")
    store = browser.live.services.store
    record = store.get("session", sid)
    assert record["refresh_token"]
    old = record["access_token"]
    record["expires_at"] = time.time() + 20  # inside the refresh margin
    store.put("session", sid, record, 600)
    assert browser.get("/app/").status_code == 200
    renewed = store.get("session", sid)
    assert renewed["access_token"] != old and renewed["expires_at"] > time.time() + 600


# ------------------------------------------------------------------ failures → clear pages


def test_untrusted_iss_is_refused_before_any_request(live_app: LiveApp) -> None:
    resp = requests.get(f"{live_app.origin}/app/launch", params={"iss": "https://evil.example/fhir", "launch": "x"},
                        timeout=30, allow_redirects=False)
    assert_clean_problem(resp, "untrusted_iss", 403)
    assert "TELEHUB_APP_TRUSTED_ISSUERS" in resp.text


def test_missing_iss(live_app: LiveApp) -> None:
    assert_clean_problem(requests.get(f"{live_app.origin}/app/launch", timeout=30), "missing_iss", 400)


def test_denied_consent(browser: Browser) -> None:
    resp = browser.consent(browser.sign_in(browser.sandbox_launch()), decision="deny")
    assert_clean_problem(resp, "access_denied", 403)


def test_expired_launch(browser: Browser, live_app: LiveApp) -> None:
    resp = browser.get(f"/app/launch?iss={live_app.origin}/fhir&launch=expired-or-made-up")
    assert_clean_problem(resp, "launch_expired", 400)


def test_missing_scopes(browser: Browser) -> None:
    resp = browser.consent(browser.sign_in(browser.sandbox_launch()), drop=("patient/Patient.rs",))
    assert_clean_problem(resp, "missing_scopes", 403)
    assert "patient/Patient.rs" in resp.text


def test_state_mismatch_and_foreign_browser(browser: Browser, live_app: LiveApp) -> None:
    assert_clean_problem(browser.get("/app/callback?code=x&state=made-up"), "state_mismatch", 400)
    start = browser.session.get(f"{live_app.origin}/app/launch", params={"iss": f"{live_app.origin}/fhir"},
                                allow_redirects=False, timeout=30)
    state = re.search(r"state=([^&]+)", start.headers["Location"])
    assert state
    other = requests.get(f"{live_app.origin}/app/callback", params={"code": "x", "state": state.group(1)},
                         timeout=30)  # another browser (no binding cookie) presents this browser's state
    assert_clean_problem(other, "state_mismatch", 400)


def test_no_session(live_app: LiveApp) -> None:
    assert_clean_problem(requests.get(f"{live_app.origin}/app/", timeout=30), "session_expired", 401)
    assert_clean_problem(requests.get(f"{live_app.origin}/app/nowhere", timeout=30), "launch_failed", 404)


def test_scheduling_pages_sit_behind_the_launch(browser: Browser, live_app: LiveApp) -> None:
    if "scheduling" not in live_app.mounted.smart_app.blueprints:
        pytest.skip("smart_app.scheduling is not there yet")
    assert_clean_problem(requests.get(f"{live_app.origin}/app/schedule/", timeout=30), "session_expired", 401)
    dash = browser.launch(flavour="generic")
    assert 'href="/app/schedule/"' in dash.text
    assert browser.get("/app/schedule/").status_code == 200


def test_ehr_down(live_app: LiveApp) -> None:
    """A trusted EHR that does not answer (connection refused)."""
    from dataclasses import replace

    from smart_app.app import create_app
    from smart_app.settings import TrustedIssuer

    settings = live_app.services.settings
    app = create_app(replace(settings, trusted_issuers=(TrustedIssuer("http://127.0.0.1:9/fhir"),)))
    resp = app.test_client().get("/launch?iss=http://127.0.0.1:9/fhir&launch=abc")
    assert resp.status_code == 502 and b'data-problem="ehr_unavailable"' in resp.data
    assert b"Traceback" not in resp.data and b"What to do:" in resp.data


