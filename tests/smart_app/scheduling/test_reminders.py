"""Reminders: minimum-necessary content, the BAA gate, and the SMS/e-mail adapters replayed from
shared/data/notifications recordings with ``responses``; then the due-reminder job against the hub."""
from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import pytest
import responses

from fhir_gateway.outbound.baa import AdapterRegistry, BaaRequired, NotPhiCapable
from fhir_gateway.settings import Settings
from smart_app.scheduling import SchedulingService
from smart_app.scheduling.notify import DeliveryError, Message, adapters_from_settings
from smart_app.scheduling.notify.console import ConsoleNotifier
from smart_app.scheduling.notify.sendgrid_email import API as SENDGRID_API
from smart_app.scheduling.notify.sendgrid_email import SendGridEmail
from smart_app.scheduling.notify.twilio_sms import TwilioSms
from smart_app.scheduling.reminders import ReminderPolicy, plan, send_due
from smart_app.scheduling.seed import seed_demo_providers

from .conftest import NOW, FlaskHub, patient

SID = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
TWILIO_URL = f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"
APPT = {"id": "a1", "start": "2026-11-24T15:00:00Z", "end": "2026-11-24T15:30:00Z",
        "serviceType": [{"coding": [{"system": "https://telehub.example/fhir/CodeSystem/visit-modality",
                                     "code": "video"}]}]}


def recording(shared_data: Path, name: str) -> dict[str, Any]:
    return json.loads((shared_data / "notifications" / name).read_text())  # type: ignore[no-any-return]


def registry(baa: str = "") -> AdapterRegistry:
    return AdapterRegistry.from_settings(Settings(baa_signed=baa))


def twilio(baa: str = "") -> TwilioSms:
    return TwilioSms(registry(baa).get("twilio-sms"), SID, "token", messaging_service_sid="MG" + "a" * 32,
                     status_callback="https://telehub.example/webhooks/twilio/sms-status", validity_seconds="900")


def sendgrid(baa: str = "") -> SendGridEmail:
    return SendGridEmail(registry(baa).get("sendgrid"), "SG.key", "sam.smith@example.com", "Sam Smith")


# -- content --------------------------------------------------------------------------------------------
def test_minimal_reminders_carry_no_phi_and_skip_past_offsets() -> None:
    policy = ReminderPolicy(offsets=(timedelta(hours=24), timedelta(minutes=15), timedelta(days=3)),
                            portal_url="https://telehub.example/app")
    planned = plan(APPT, policy, NOW)  # NOW is 27 h before the visit: the 3-day reminder is already past
    assert [p.send_at.isoformat() for p in planned] == ["2026-11-23T15:00:00+00:00", "2026-11-24T14:45:00+00:00"]
    assert [p.text for p in planned] == [
        "Reminder: your video visit starts tomorrow. Open https://telehub.example/app to join.",
        "Reminder: your video visit starts in 15 minutes. Open https://telehub.example/app to join."]
    assert not any(p.contains_phi for p in planned)


def test_detailed_reminders_are_marked_phi() -> None:
    (p,) = plan(APPT, ReminderPolicy(offsets=(timedelta(hours=2),), detail="detailed"), NOW,
                provider="Dr. Amara Okafor", zone=ZoneInfo("America/New_York"))
    assert p.contains_phi and "Dr. Amara Okafor" in p.text and "Tue 24 Nov 2026 10:00 EST" in p.text


# -- Twilio SMS, replayed ---------------------------------------------------------------------------------
@responses.activate
def test_twilio_sends_the_recorded_reminder_form(shared_data: Path) -> None:
    req = recording(shared_data, "twilio-messaging/messages_create_request_reminder.json")["request"]
    ok = recording(shared_data, "twilio-messaging/messages_create_response.json")["response"]
    responses.post(TWILIO_URL, json=ok["body"], status=ok["status"])
    sms = twilio()
    receipt = sms.send(Message("sms", req["form"]["To"], req["form"]["Body"]))
    assert receipt.provider_id == "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" and receipt.status == "sent"
    sent = responses.calls[0].request
    assert sent.url == req["url"]
    assert dict(parse_qsl(str(sent.body))) == req["form"]
    assert sent.headers["Authorization"].startswith("Basic ")


@responses.activate
def test_twilio_error_is_typed_and_does_not_echo_the_number(shared_data: Path) -> None:
    err = recording(shared_data, "twilio-messaging/error_400_21211_invalid-to.json")["response"]
    responses.post(TWILIO_URL, json=err["body"], status=err["status"])
    with pytest.raises(DeliveryError) as exc:
        twilio().send(Message("sms", "+1555BADNUMBER", "hi"))
    assert exc.value.code == "21211" and not exc.value.retryable and "BADNUMBER" not in str(exc.value)


@responses.activate
def test_phi_is_refused_before_any_request_without_a_baa() -> None:
    with pytest.raises(BaaRequired):
        twilio().send(Message("sms", "+15558675310", "Visit with Dr X at 10:00", contains_phi=True))
    with pytest.raises(BaaRequired):
        sendgrid().send(Message("email", "p@example.com", "details", contains_phi=True))
    assert len(responses.calls) == 0
    with pytest.raises(NotPhiCapable):  # the console is PHI-free by design, BAA or not
        ConsoleNotifier(registry().get("console"), io.StringIO()).send(Message("console", "x", "y", contains_phi=True))


@responses.activate
def test_phi_passes_once_the_deployment_attests_a_baa(shared_data: Path) -> None:
    ok = recording(shared_data, "twilio-messaging/messages_create_response.json")["response"]
    responses.post(TWILIO_URL, json=ok["body"], status=201)
    assert twilio(baa="twilio-sms").send(Message("sms", "+15558675310", "details", contains_phi=True)).status


# -- SendGrid e-mail, replayed ------------------------------------------------------------------------
@responses.activate
def test_sendgrid_202_and_payload_shape(shared_data: Path) -> None:
    rec = recording(shared_data, "sendgrid/mail-send_202_plain.json")
    responses.post(SENDGRID_API, status=rec["response"]["status"], headers={"X-Message-Id": "msg-123"}, body=b"")
    receipt = sendgrid().send(Message("email", "john.doe@example.com", "Heya!", "Hello, World!", reference="cr-1"))
    assert receipt.provider_id == "msg-123"
    body = json.loads(responses.calls[0].request.body or b"{}")
    recorded = rec["request"]["body"]
    assert body["from"] == recorded["from"] and body["content"] == recorded["content"]
    assert body["personalizations"][0]["to"] == [{"email": "john.doe@example.com"}]
    assert body["personalizations"][0]["custom_args"] == {"communication_request": "cr-1"}
    assert responses.calls[0].request.headers["Authorization"] == "Bearer SG.key"


@pytest.mark.parametrize(("name", "code", "retry"), [("sendgrid/mail-send_400_validation.json", "from.email", False),
                                                     ("sendgrid/mail-send_401.json", "401", False)])
@responses.activate
def test_sendgrid_errors(shared_data: Path, name: str, code: str, retry: bool) -> None:
    err = recording(shared_data, name)["response"]
    responses.post(SENDGRID_API, json=err["body"], status=err["status"])
    with pytest.raises(DeliveryError) as exc:
        sendgrid().send(Message("email", "patient@example.com", "x"))
    assert exc.value.code == code and exc.value.retryable is retry


@responses.activate
def test_sendgrid_5xx_is_retryable() -> None:
    responses.post(SENDGRID_API, status=503, body=b"")
    with pytest.raises(DeliveryError) as exc:
        sendgrid().send(Message("email", "patient@example.com", "x"))
    assert exc.value.retryable


# -- the due-reminder job against the hub ----------------------------------------------------------
@responses.activate
def test_send_due_records_communications_once(sqlite_hub: FlaskHub, shared_data: Path) -> None:
    ok = recording(shared_data, "twilio-messaging/messages_create_response.json")["response"]
    responses.post(TWILIO_URL, json=ok["body"], status=201)
    hub = sqlite_hub
    seed_demo_providers(hub, NOW, horizon_days=2)
    policy = ReminderPolicy(offsets=(timedelta(minutes=15),))
    svc = SchedulingService(hub, reminder_policy=policy, clock=lambda: NOW)
    pat = hub.create(patient("NY"))
    booked = svc.on_demand(pat["id"])
    (request,) = hub.search("CommunicationRequest", {"subject": f"Patient/{pat['id']}"})
    assert request["status"] == "active" and request["about"] == [{"reference": f"Appointment/"
                                                                                f"{booked.appointment['id']}"}]
    settings = Settings()
    notifiers = adapters_from_settings(settings, {"twilio-sms": {
        "account_sid": SID, "auth_token": "t", "messaging_service_sid": "MG" + "a" * 32}})
    assert send_due(hub, notifiers, NOW, policy).sent == 0  # not due yet
    due = NOW + timedelta(hours=1, minutes=50)  # first slot 14:00Z → reminder due 13:45Z
    report = send_due(hub, notifiers, due, policy)
    assert (report.sent, report.failed, report.refused) == (1, 0, 0)
    (comm,) = hub.search("Communication", {"subject": f"Patient/{pat['id']}"})
    assert comm["status"] == "completed" and comm["medium"][0]["coding"][0]["code"] == "SMSWRIT"
    assert comm["identifier"][0]["value"] == "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    assert comm["basedOn"] == [{"reference": f"CommunicationRequest/{request['id']}"}]
    assert "Okafor" not in comm["payload"][0]["contentString"]
    assert hub.get(f"CommunicationRequest/{request['id']}")["status"] == "completed"
    assert send_due(hub, notifiers, due, policy).sent == 0  # never twice
    assert dict(parse_qsl(str(responses.calls[0].request.body)))["To"] == "+15558675310"


def test_detailed_reminder_to_a_vendor_without_baa_is_refused_and_recorded(sqlite_hub: FlaskHub) -> None:
    hub = sqlite_hub
    seed_demo_providers(hub, NOW, horizon_days=2)
    policy = ReminderPolicy(offsets=(timedelta(minutes=15),), detail="detailed", channels=("sms",))
    svc = SchedulingService(hub, reminder_policy=policy, clock=lambda: NOW)
    pat = hub.create(patient("NY"))
    svc.on_demand(pat["id"])
    with responses.RequestsMock() as mock:  # no HTTP call may happen
        report = send_due(hub, {"sms": twilio()}, NOW + timedelta(hours=1, minutes=50), policy)
        assert len(mock.calls) == 0
    assert report.refused == 1
    (comm,) = hub.search("Communication", {"subject": f"Patient/{pat['id']}"})
    assert comm["status"] == "not-done" and "Business Associate Agreement" in comm["statusReason"]["text"]


def test_console_adapter_for_development(sqlite_hub: FlaskHub) -> None:
    hub = sqlite_hub
    seed_demo_providers(hub, NOW, horizon_days=2)
    policy = ReminderPolicy(offsets=(timedelta(minutes=15),))
    SchedulingService(hub, reminder_policy=policy, clock=lambda: NOW).on_demand(hub.create(patient("NY"))["id"])
    out = io.StringIO()
    console = ConsoleNotifier(registry().get("console"), out)
    assert send_due(hub, {"console": console}, NOW + timedelta(hours=1, minutes=50), policy).sent == 1
    assert "starts in 15 minutes" in out.getvalue() and "+15558675310" not in out.getvalue()
