"""Scheduling (issue 7): availability → Schedule/Slot, booking with licensure checks, reminders, iCal feed.

Everything is FHIR through :class:`smart_app.scheduling.ports.FhirPort` (smart_app's ``HubClient``).
Mount the pages with ``app.register_blueprint(make_scheduling_blueprint(hub), url_prefix="/app/schedule")``.
"""
from smart_app.scheduling.blueprint import make_scheduling_blueprint
from smart_app.scheduling.ports import FhirPort
from smart_app.scheduling.service import SchedulingService

__all__ = ["FhirPort", "SchedulingService", "make_scheduling_blueprint"]
