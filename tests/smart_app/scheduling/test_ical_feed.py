"""The provider's iCalendar feed: tokenised URL (hashed at rest, revocable) and no PHI in events."""
from __future__ import annotations

from typing import Any

from flask import Flask
from icalendar import Calendar

from smart_app.scheduling import SchedulingService, make_scheduling_blueprint
from smart_app.scheduling.codes import ICAL_TOKEN_SYSTEM
from smart_app.scheduling.feed_tokens import issue, lookup, revoke, token_hash
from smart_app.scheduling.ical import render
from smart_app.scheduling.seed import seed_demo_providers

from .conftest import NOW, FlaskHub, patient

PREFIX = "/app/schedule"


def test_render_has_times_and_modality_only() -> None:
    appts: list[dict[str, Any]] = [
        {"id": "a1", "status": "booked", "start": "2026-11-24T15:00:00Z", "end": "2026-11-24T15:30:00Z",
         "meta": {"versionId": "3"}, "description": "Chest pain follow-up", "comment": "Peter Chalmers",
         "serviceType": [{"coding": [{"system": "https://telehub.example/fhir/CodeSystem/visit-modality",
                                      "code": "phone"}]}]},
        {"id": "a2", "status": "cancelled", "start": "2026-11-25T15:00:00Z", "end": "2026-11-25T15:30:00Z"},
        {"id": "a3", "status": "noshow", "start": "2026-11-20T15:00:00Z", "end": "2026-11-20T15:30:00Z"},
    ]
    text = render(appts, NOW).decode()
    cal = Calendar.from_ical(text)
    events = list(cal.walk("VEVENT"))
    assert [str(e["uid"]) for e in events] == ["a1@telehub", "a2@telehub"]
    assert str(events[0]["summary"]) == "Phone visit" and str(events[0]["status"]) == "CONFIRMED"
    assert events[0].decoded("dtstart").isoformat() == "2026-11-24T15:00:00+00:00"
    assert int(str(events[0]["sequence"])) == 3 and str(events[1]["status"]) == "CANCELLED"
    for word in ("Chest", "Chalmers", "DESCRIPTION", "ATTENDEE", "LOCATION"):
        assert word not in text


def test_feed_url_token_is_hashed_and_revocable(sqlite_hub: FlaskHub) -> None:
    hub = sqlite_hub
    ids = seed_demo_providers(hub, NOW, horizon_days=2)
    pid = ids["ny-nj"]
    svc = SchedulingService(hub, clock=lambda: NOW)
    pat = hub.create(patient("NY", name=[{"family": "Zebulon", "given": ["Quincy"]}]))
    booked = svc.on_demand(pat["id"])
    app = Flask("t")
    app.register_blueprint(make_scheduling_blueprint(hub, service=svc), url_prefix=PREFIX)
    web = app.test_client()

    page = web.post(f"{PREFIX}/providers/{pid}/feed")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    url = html.split('<code class="url">')[1].split("</code>")[0]
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    assert len(token) >= 40
    schedule = hub.search("Schedule", {"actor": f"Practitioner/{pid}"})[0]
    stored = [i["value"] for i in schedule["identifier"] if i["system"] == ICAL_TOKEN_SYSTEM]
    assert stored == [token_hash(token)] and token not in str(schedule)

    feed = web.get(f"{PREFIX}/feed/{token}.ics")
    assert feed.status_code == 200 and feed.mimetype == "text/calendar"
    body = feed.get_data(as_text=True)
    assert f"UID:{booked.appointment['id']}@telehub" in body and "SUMMARY:Video visit" in body
    assert "Zebulon" not in body and "Quincy" not in body and pat["id"] not in body

    # Issuing again replaces the token; revoking removes it.
    second = issue(hub, pid)
    assert web.get(f"{PREFIX}/feed/{token}.ics").status_code == 404
    assert lookup(hub, second) is not None
    assert web.post(f"{PREFIX}/providers/{pid}/feed/revoke").status_code == 303
    assert web.get(f"{PREFIX}/feed/{second}.ics").status_code == 404
    assert web.get(f"{PREFIX}/feed/not-a-token.ics").status_code == 404
    revoke(hub, pid)  # idempotent
    # Other providers' visits never appear in this provider's feed.
    third = issue(hub, ids["ca"])
    assert booked.appointment["id"] not in web.get(f"{PREFIX}/feed/{third}.ics").get_data(as_text=True)
