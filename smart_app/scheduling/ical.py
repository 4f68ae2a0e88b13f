"""The provider's iCalendar feed (RFC 5545, with the ``icalendar`` library): visit times only.

Calendar apps copy events to third-party servers, so events carry no PHI: the title is the
modality ("Video visit"), there is no description, location or attendee, and the UID is built
from the Appointment id (an opaque server id). Cancelled visits stay in the feed as
``STATUS:CANCELLED`` so subscribed calendars remove them.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from icalendar import Calendar, Event

from smart_app.scheduling.codes import MODALITY_DISPLAY
from smart_app.scheduling.ports import FhirPort, Resource
from smart_app.scheduling.schedules import practitioner_id_of
from smart_app.scheduling.slots import fhir_instant, instant, modality

SHOWN = {"booked": "CONFIRMED", "arrived": "CONFIRMED", "checked-in": "CONFIRMED", "fulfilled": "CONFIRMED",
         "pending": "TENTATIVE", "cancelled": "CANCELLED"}
UID_DOMAIN = "telehub"


def render(appointments: Iterable[Resource], now: datetime, name: str = "Telehub visits") -> bytes:
    cal = Calendar()
    cal.add("prodid", "-//Telehub//Scheduling//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", name)
    cal.add("method", "PUBLISH")
    for appt in appointments:
        status = SHOWN.get(str(appt.get("status")))
        if status is None or not appt.get("start") or not appt.get("end"):
            continue
        event = Event()
        event.add("uid", f"{appt['id']}@{UID_DOMAIN}")
        event.add("dtstamp", now)
        event.add("dtstart", instant(appt["start"]))
        event.add("dtend", instant(appt["end"]))
        event.add("summary", MODALITY_DISPLAY.get(modality(appt), "Visit"))
        event.add("status", status)
        event.add("transp", "OPAQUE")
        event.add("class", "PRIVATE")
        seq = (appt.get("meta") or {}).get("versionId")
        if seq and str(seq).isdigit():
            event.add("sequence", int(seq))
        cal.add_component(event)
    return bytes(cal.to_ical())


def feed_for(hub: FhirPort, schedule: Resource, now: datetime, past_days: int = 30,
             future_days: int = 180) -> bytes:
    practitioner = f"Practitioner/{practitioner_id_of(schedule)}"
    appointments = hub.search("Appointment", [
        ("practitioner", practitioner), ("_count", "500"),
        ("date", f"ge{fhir_instant(now - timedelta(days=past_days))}"),
        ("date", f"lt{fhir_instant(now + timedelta(days=future_days))}")])
    return render(appointments, now)
