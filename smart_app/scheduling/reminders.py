"""Visit reminders: planned as CommunicationRequests at booking, sent when due, recorded as Communications.

Minimum necessary content (ARCHITECTURE "Security"): by default a reminder says only the kind of
visit, how soon, and the portal link — no name, provider, reason or date — so it is PHI-free and
may go through any adapter. ``detail="detailed"`` (provider and local date/time) is marked
``contains_phi`` and is refused by the BAA gate for a vendor without a BAA; use it only where the
patient agreed to detailed reminders. Sending claims each request with If-Match first, so two
workers never send the same reminder twice.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from fhir_gateway.outbound.baa import PhiRefused
from smart_app.scheduling.codes import (
    COMMUNICATION_CATEGORY_SYSTEM,
    CONTAINS_PHI_EXT,
    MEDIUM,
    MEDIUM_SYSTEM,
    MODALITY_DISPLAY,
    NOTIFICATION_ID_SYSTEM,
    REMINDER_GROUP_SYSTEM,
)
from smart_app.scheduling.notify.base import Channel, DeliveryError, Message, Notifier
from smart_app.scheduling.ports import FhirPort, Resource, etag, http_status
from smart_app.scheduling.slots import fhir_instant, instant, modality

log = logging.getLogger("telehub.scheduling.reminders")
CATEGORY = [{"coding": [{"system": COMMUNICATION_CATEGORY_SYSTEM, "code": "reminder"}]}]


@dataclass(frozen=True)
class ReminderPolicy:
    offsets: tuple[timedelta, ...] = (timedelta(hours=24), timedelta(minutes=15))
    detail: Literal["minimal", "detailed"] = "minimal"
    portal_url: str = "http://127.0.0.1:8080/app"
    channels: tuple[Channel, ...] = ("sms", "email", "console")  # preference order


@dataclass(frozen=True)
class PlannedReminder:
    send_at: datetime
    subject: str
    text: str
    contains_phi: bool


@dataclass
class SendReport:
    sent: int = 0
    refused: int = 0
    failed: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


def _soon(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        days = minutes // (24 * 60)
        return "tomorrow" if days == 1 else f"in {days} days"
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"in {hours} hour{'s' if hours != 1 else ''}"
    return f"in {minutes} minutes"


def plan(appointment: Resource, policy: ReminderPolicy, now: datetime, *, provider: str = "",
         zone: ZoneInfo | None = None) -> list[PlannedReminder]:
    """The reminders still ahead for a booked visit (pure). Offsets already past are dropped."""
    start = instant(appointment["start"])
    kind = MODALITY_DISPLAY.get(modality(appointment), "Visit")
    out = []
    for offset in sorted(set(policy.offsets), reverse=True):
        send_at = start - offset
        if send_at <= now:
            continue
        if policy.detail == "detailed":
            local = start.astimezone(zone) if zone else start
            when = local.strftime("%a %d %b %Y %H:%M %Z")
            text = f"Reminder: {kind.lower()} with {provider or 'your clinician'} on {when}. Open {policy.portal_url}"
            out.append(PlannedReminder(send_at, f"{kind} reminder", text, True))
        else:
            text = f"Reminder: your {kind.lower()} starts {_soon(offset)}. Open {policy.portal_url} to join."
            out.append(PlannedReminder(send_at, "Visit reminder", text, False))
    return out


def request_body(appointment: Resource, patient_ref: str, reminder: PlannedReminder, policy: ReminderPolicy,
                 now: datetime) -> Resource:
    return {
        "resourceType": "CommunicationRequest", "status": "active", "category": CATEGORY,
        "groupIdentifier": {"system": REMINDER_GROUP_SYSTEM, "value": appointment["id"]},
        "subject": {"reference": patient_ref}, "recipient": [{"reference": patient_ref}],
        "about": [{"reference": f"Appointment/{appointment['id']}"}],
        "medium": [{"coding": [{"system": MEDIUM_SYSTEM, "code": MEDIUM[c]}]} for c in policy.channels],
        "occurrenceDateTime": fhir_instant(reminder.send_at), "authoredOn": fhir_instant(now),
        "payload": [{"contentString": reminder.text}],
        "extension": [{"url": CONTAINS_PHI_EXT, "valueBoolean": reminder.contains_phi}],
        "note": [{"text": reminder.subject}],
    }


def schedule_reminders(hub: FhirPort, appointment: Resource, patient_ref: str, policy: ReminderPolicy,
                       now: datetime, *, provider: str = "", zone: ZoneInfo | None = None) -> int:
    planned = plan(appointment, policy, now, provider=provider, zone=zone)
    if planned:
        hub.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": request_body(appointment, patient_ref, r, policy, now),
             "request": {"method": "POST", "url": "CommunicationRequest"}} for r in planned]})
    return len(planned)


def revoke_reminders(hub: FhirPort, appointment_id: str) -> int:
    """Withdraw the unsent reminders of a visit (cancelled or rescheduled)."""
    pending = hub.search("CommunicationRequest", {"group-identifier": f"{REMINDER_GROUP_SYSTEM}|{appointment_id}",
                                                  "status": "active"})
    if pending:
        hub.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": _bare(cr) | {"status": "revoked"},
             "request": {"method": "PUT", "url": f"CommunicationRequest/{cr['id']}", "ifMatch": etag(cr)}}
            for cr in pending]})
    return len(pending)


def _bare(resource: Resource) -> Resource:
    return {k: v for k, v in resource.items() if k != "meta"}


def _put(hub: FhirPort, resource: Resource, status: str) -> Resource:
    reply = hub.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": _bare(resource) | {"status": status},
         "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}",
                     "ifMatch": etag(resource)}}]})
    return dict(reply["entry"][0]["resource"])


def _address(patient: Resource, channel: Channel) -> str | None:
    system = {"sms": "phone", "email": "email", "console": None}[channel]
    telecoms = [t for t in patient.get("telecom", []) or [] if t.get("value") and t.get("use") != "old"]
    if system is None:
        return "console"
    if system == "phone":
        telecoms = [t for t in telecoms if t.get("system") in ("phone", "sms") and t.get("use") in ("mobile", None)]
    else:
        telecoms = [t for t in telecoms if t.get("system") == "email"]
    return str(telecoms[0]["value"]) if telecoms else None


def _channel_for(patient: Resource, notifiers: Mapping[Channel, Notifier],
                 policy: ReminderPolicy) -> tuple[Channel, str] | None:
    for channel in policy.channels:
        address = _address(patient, channel)
        if channel in notifiers and address:
            return channel, address
    return None


def send_due(hub: FhirPort, notifiers: Mapping[Channel, Notifier], now: datetime,
             policy: ReminderPolicy | None = None, limit: int = 100) -> SendReport:
    """Send every reminder due by ``now`` (run from a periodic job)."""
    policy = policy or ReminderPolicy()
    report = SendReport()
    due = hub.search("CommunicationRequest", {"status": "active", "category": "reminder",
                                              "occurrence": f"le{fhir_instant(now)}", "_count": str(limit)})
    for request in due[:limit]:
        try:
            claimed = _put(hub, request, "on-hold")
        except Exception as exc:
            if http_status(exc) in (409, 412):
                report.skipped += 1  # another worker has it
                continue
            raise
        _send_one(hub, claimed, notifiers, policy, now, report)
    return report


def _send_one(hub: FhirPort, request: Resource, notifiers: Mapping[Channel, Notifier], policy: ReminderPolicy,
              now: datetime, report: SendReport) -> None:
    appointment = hub.get(request["about"][0]["reference"])
    if appointment.get("status") != "booked" or instant(appointment["start"]) <= now:
        _put(hub, request, "revoked")
        report.skipped += 1
        return
    patient = hub.get(request["subject"]["reference"])
    chosen = _channel_for(patient, notifiers, policy)
    text = request["payload"][0]["contentString"]
    phi = any(e.get("url") == CONTAINS_PHI_EXT and e.get("valueBoolean") for e in request.get("extension", []))
    communication: Resource = {
        "resourceType": "Communication", "status": "completed", "category": CATEGORY,
        "basedOn": [{"reference": f"CommunicationRequest/{request['id']}"}], "about": request["about"],
        "subject": request["subject"], "recipient": request["recipient"], "sent": fhir_instant(now),
        "payload": [{"contentString": text}],
    }
    if chosen is None:
        communication |= {"status": "not-done", "statusReason": {"text": "no reachable channel"}}
        report.failed += 1
    else:
        channel, address = chosen
        adapter = notifiers[channel]
        communication["medium"] = [{"coding": [{"system": MEDIUM_SYSTEM, "code": MEDIUM[channel]}]}]
        subject = (request.get("note") or [{}])[0].get("text", "Visit reminder")
        try:
            receipt = adapter.send(Message(channel, address, text, subject, phi, request["id"]))
        except PhiRefused as exc:
            communication |= {"status": "not-done", "statusReason": {"text": f"refused: {exc.reason}"}}
            report.refused += 1
        except DeliveryError as exc:
            if exc.retryable:
                _put(hub, request, "active")  # try again on the next run
                report.failed += 1
                report.errors.append(str(exc))
                return
            communication |= {"status": "not-done", "statusReason": {"text": f"{exc.adapter} error {exc.code}"}}
            report.failed += 1
            report.errors.append(str(exc))
        else:
            if receipt.provider_id:
                communication["identifier"] = [{"system": f"{NOTIFICATION_ID_SYSTEM}/{receipt.adapter}",
                                                "value": receipt.provider_id}]
            report.sent += 1
    hub.create(communication)
    _put(hub, request, "completed")
