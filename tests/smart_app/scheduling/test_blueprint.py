"""The scheduling pages and JSON endpoints, mounted like smart_app will mount them (/app/schedule)."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from smart_app.scheduling import SchedulingService, make_scheduling_blueprint
from smart_app.scheduling.seed import seed_demo_providers
from smart_app.scheduling.web import Actor, front_desk

from .conftest import NOW, FlaskHub, patient

PREFIX = "/app/schedule"


def make_app(hub: FlaskHub, actor: Actor | None = None, clock_offset: timedelta = timedelta()) -> Flask:
    app = Flask("scheduling-test")
    svc = SchedulingService(hub, clock=lambda: NOW + clock_offset)
    who = (lambda: actor) if actor else front_desk
    app.register_blueprint(make_scheduling_blueprint(hub, service=svc, actor=who), url_prefix=PREFIX)
    return app


@pytest.fixture
def seeded(sqlite_hub: FlaskHub) -> tuple[FlaskHub, dict[str, str]]:
    return sqlite_hub, seed_demo_providers(sqlite_hub, NOW, horizon_days=3)


@pytest.fixture
def web(seeded: tuple[FlaskHub, dict[str, str]]) -> FlaskClient:
    return make_app(seeded[0]).test_client()


def _first_slot(html: str) -> str:
    m = re.search(r'name="slot" value="([^"]+)"', html)
    assert m, html
    return m.group(1)


def test_booking_page_offers_licensed_providers_only_and_books(seeded: tuple[FlaskHub, dict[str, str]],
                                                              web: FlaskClient) -> None:
    hub, ids = seeded
    pat = hub.create(patient("NJ"))
    page = web.get(f"{PREFIX}/book?patient={pat['id']}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Amara Okafor" in html.split("Not available for this patient")[0]  # NY + NJ licences
    refused = html.split("Not available for this patient")[1]
    assert "Daniel Nguyen" in refused and "not licensed to see patients located in NJ" in refused
    assert "Owen Price" in refused  # expired NY licence, not NJ anyway
    assert '<html lang="en">' in html and '<label for="attested_state">' in html and "<legend>" in html
    booked = web.post(f"{PREFIX}/book", data={"patient": pat["id"], "slot": _first_slot(html)})
    assert booked.status_code == 201 and "Visit booked" in booked.get_data(as_text=True)
    appts = hub.search("Appointment", {"patient": f"Patient/{pat['id']}"})
    assert [a["status"] for a in appts] == ["booked"]
    assert f"Practitioner/{ids['ny-nj']}" in {p["actor"]["reference"] for p in appts[0]["participant"]}
    # Reminders were planned as CommunicationRequests, PHI-free by default.
    reminders = hub.search("CommunicationRequest", {"subject": f"Patient/{pat['id']}"})
    assert reminders and all("Okafor" not in r["payload"][0]["contentString"] for r in reminders)


def test_out_of_state_booking_shows_the_reason(seeded: tuple[FlaskHub, dict[str, str]], web: FlaskClient) -> None:
    hub, ids = seeded
    pat = hub.create(patient("CA"))
    ny_slots = hub.search("Slot", {"schedule": hub.search("Schedule", {"actor": f"Practitioner/{ids['ny-nj']}"})[0][
        "id"], "status": "free"})
    resp = web.post(f"{PREFIX}/book", data={"patient": pat["id"], "slot": ny_slots[0]["id"]})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert 'role="alert"' in html and "Booking refused" in html
    assert "This provider is not licensed to see patients located in CA" in html
    api = web.post(f"{PREFIX}/api/appointments", json={"slot": ny_slots[0]["id"], "patient": pat["id"]})
    assert api.status_code == 422 and api.get_json()["error"] == "not-licensed"


def test_on_demand_and_appointment_actions(seeded: tuple[FlaskHub, dict[str, str]], web: FlaskClient) -> None:
    hub, ids = seeded
    pat = hub.create(patient("AZ"))
    resp = web.post(f"{PREFIX}/book/on-demand", data={"patient": pat["id"], "modality": "video"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    (appt,) = hub.search("Appointment", {"patient": f"Patient/{pat['id']}"})
    # Licensed in AZ with video: the AZ MD (09:00 Denver) and the PSYPACT psychologist (09:00 New York, earlier).
    assert f"Practitioner/{ids['pa-psypact']}" in {p["actor"]["reference"] for p in appt["participant"]}
    assert appt["start"] == "2026-11-23T14:00:00Z"
    detail = web.get(f"{PREFIX}/appointments/{appt['id']}").get_data(as_text=True)
    new_slot = _first_slot(detail)
    moved = web.post(f"{PREFIX}/appointments/{appt['id']}/reschedule", data={"slot": new_slot})
    assert moved.status_code == 303
    assert hub.get(f"Appointment/{appt['id']}")["slot"][0]["reference"] == f"Slot/{new_slot}"
    early = web.post(f"{PREFIX}/appointments/{appt['id']}/no-show")
    assert early.status_code == 409 and "only after its start" in early.get_data(as_text=True)
    cancelled = web.post(f"{PREFIX}/appointments/{appt['id']}/cancel", data={"reason": "pat-fb", "note": ""})
    assert cancelled.status_code == 303
    assert hub.get(f"Appointment/{appt['id']}")["status"] == "cancelled"
    assert hub.get(f"Slot/{new_slot}")["status"] == "free"
    revoked = hub.search("CommunicationRequest", {"subject": f"Patient/{pat['id']}", "status": "revoked"})
    assert revoked and not hub.search("CommunicationRequest", {"subject": f"Patient/{pat['id']}",
                                                               "status": "active"})


def test_no_show_after_start_through_the_page(seeded: tuple[FlaskHub, dict[str, str]]) -> None:
    hub, _ = seeded
    pat = hub.create(patient("NY"))
    web = make_app(hub).test_client()
    booked = web.post(f"{PREFIX}/api/appointments/on-demand", json={"patient": pat["id"]})
    assert booked.status_code == 201
    later = make_app(hub, clock_offset=timedelta(days=2)).test_client()
    assert later.post(f"{PREFIX}/appointments/{booked.get_json()['id']}/no-show").status_code == 303
    assert hub.get(f"Appointment/{booked.get_json()['id']}")["status"] == "noshow"


def test_patient_books_only_for_themselves(seeded: tuple[FlaskHub, dict[str, str]]) -> None:
    hub, _ = seeded
    me, other = hub.create(patient("NY")), hub.create(patient("NY"))
    web = make_app(hub, Actor("patient", patient_id=me["id"])).test_client()
    assert web.get(f"{PREFIX}/book?patient={other['id']}").status_code == 403
    page = web.get(f"{PREFIX}/book")
    assert page.status_code == 200 and me["id"] in page.get_data(as_text=True)
    booked = web.post(f"{PREFIX}/api/appointments/on-demand", json={})
    assert booked.status_code == 201
    assert booked.get_json()["extension"][0]["valueCode"] == "patient"
    assert web.post(f"{PREFIX}/appointments/{booked.get_json()['id']}/no-show").status_code == 403


def test_availability_editor_saves_and_reports_errors(seeded: tuple[FlaskHub, dict[str, str]],
                                                    web: FlaskClient) -> None:
    hub, ids = seeded
    pid = ids["ca"]
    page = web.get(f"{PREFIX}/providers/{pid}/availability").get_data(as_text=True)
    assert "America/Los_Angeles" in page and '<label for="hours">' in page
    form = {"timezone": "America/Los_Angeles", "hours": "mon 10:00-11:00", "visit_types":
            "video-30 | Video visit | 30 | video", "buffer_before": "0", "buffer_after": "0", "blackouts": "",
            "horizon_days": "3"}
    saved = web.post(f"{PREFIX}/providers/{pid}/availability", data=form)
    assert saved.status_code == 200 and "Saved." in saved.get_data(as_text=True)
    schedule = hub.search("Schedule", {"actor": f"Practitioner/{pid}"})[0]
    free = hub.search("Slot", {"schedule": f"Schedule/{schedule['id']}", "status": "free"})
    assert [s["start"] for s in free] == ["2026-11-23T18:00:00Z", "2026-11-23T18:30:00Z"]
    bad = web.post(f"{PREFIX}/providers/{pid}/availability", data=form | {"timezone": "Nowhere/Land"})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 400 and 'role="alert"' in html and 'aria-invalid="true"' in html


def test_json_endpoints(seeded: tuple[FlaskHub, dict[str, str]], web: FlaskClient) -> None:
    hub, ids = seeded
    pat = hub.create(patient("OH"))
    providers = web.get(f"{PREFIX}/api/providers?patient={pat['id']}").get_json()
    # Ohio: only through compacts — the PSYPACT psychologist (PA licence + APIT) and the NLC nurse (TX multistate).
    assert {p["practitioner"] for p in providers["licensed"]} == {f"Practitioner/{ids['pa-psypact']}",
                                                                   f"Practitioner/{ids['tx-nlc']}"}
    assert all(p["reason"] for p in providers["notLicensed"])
    slots = web.get(f"{PREFIX}/api/slots?practitioner={ids['pa-psypact']}&days=2").get_json()
    assert slots["total"] > 0 and slots["entry"][0]["resource"]["resourceType"] == "Slot"
    booked = web.post(f"{PREFIX}/api/appointments", json={"slot": slots["entry"][0]["resource"]["id"],
                                                          "patient": f"Patient/{pat['id']}"})
    assert booked.status_code == 201 and booked.get_json()["status"] == "booked"
    again = web.post(f"{PREFIX}/api/appointments", json={"slot": slots["entry"][0]["resource"]["id"],
                                                         "patient": pat["id"]})
    assert again.status_code == 409 and again.get_json()["error"] == "slot-unavailable"
    cancel = web.post(f"{PREFIX}/api/appointments/{booked.get_json()['id']}/cancel", json={"reason": "nope"})
    assert cancel.status_code == 400 and cancel.get_json()["error"] == "invalid"
    assert web.post(f"{PREFIX}/api/appointments", data="x").status_code == 400


def test_cross_site_form_posts_are_refused(web: FlaskClient) -> None:
    assert web.post(f"{PREFIX}/book", data={}, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
