"""How long the dashboard takes with 50 of today's visits (printed, never asserted: timing belongs to bench/).

Run with ``-s`` to see the numbers. A second physician (own Practitioner, own 50 visits) keeps the demo
physician's dashboard as the other tests expect it.
"""
from __future__ import annotations

import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

from smart_app.dashboard import day_bounds, zone
from tests.smart_app.conftest import PASSWORD_FOR_BENCH, Browser, LiveApp

VISITS = 50
ROUNDS = 20


def _seed(live: LiveApp, practitioner: str) -> None:
    tz = zone("America/New_York")
    start = datetime.fromisoformat(day_bounds(datetime.now(UTC).astimezone(tz).date(), tz)[0])
    patients = list(live.patients.values())
    entries = []
    for i in range(VISITS):
        when = start + timedelta(hours=7, minutes=15 * i)  # 07:00 to 19:15 local
        entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "request": {"method": "POST", "url": "Appointment"},
                        "resource": {"resourceType": "Appointment", "status": "arrived" if i % 10 == 3 else "booked",
                                     "start": when.isoformat(), "end": (when + timedelta(minutes=15)).isoformat(),
                                     "reasonCode": [{"text": f"Visit reason {i}"}],
                                     "serviceType": [{"text": "Video visit"}],
                                     "participant": [
                                         {"actor": {"reference": f"Patient/{patients[i % len(patients)]}"},
                                          "status": "accepted"},
                                         {"actor": {"reference": f"Practitioner/{practitioner}"},
                                          "status": "accepted"}]}})
    live.services.hub.transaction({"resourceType": "Bundle", "type": "transaction", "entry": entries})


def test_dashboard_render_time_with_50_visits(live_app: LiveApp) -> None:
    practitioner = next(e["resource"]["id"] for e in live_app.fhir("Practitioner", _count="10")["entry"]
                        if e["resource"]["id"] != live_app.practitioner)
    user = live_app.auth.users.add("bench-physician", PASSWORD_FOR_BENCH, "physician",
                                   fhir_user=f"Practitioner/{practitioner}")
    _seed(live_app, practitioner)
    doc = Browser(live_app, username="bench-physician", password=PASSWORD_FOR_BENCH,
                  totp_secret=user.totp_secret or "", practitioner=practitioner)
    first = doc.launch(flavour="generic")
    assert first.status_code == 200 and first.text.count("<tr data-visit=") == VISITS
    timings = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        resp = doc.get("/app/")
        timings.append((time.perf_counter() - started) * 1000)
        assert resp.status_code == 200
    timings.sort()
    print(f"\ndashboard with {VISITS} visits, {ROUNDS} requests: median {statistics.median(timings):.1f} ms, "
          f"p95 {timings[int(0.95 * (ROUNDS - 1))]:.1f} ms, min {timings[0]:.1f} ms, max {timings[-1]:.1f} ms")
