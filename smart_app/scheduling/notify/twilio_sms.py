"""Twilio Programmable Messaging: ``POST /2010-04-01/Accounts/{sid}/Messages.json`` (form, Basic auth).

Shapes from shared/docs/integrations-notes.md §2.1 and the recordings in
shared/data/notifications/twilio-messaging/. A 201 can still fail later (StatusCallback).
"""
from __future__ import annotations

import requests

from fhir_gateway.outbound.baa import AdapterSpec, BaaAdapter
from smart_app.scheduling.notify.base import Channel, DeliveryError, Message, Receipt, guard, retryable

API = "https://api.twilio.com/2010-04-01"


class TwilioSms(BaaAdapter):
    channel: Channel = "sms"

    def __init__(self, spec: AdapterSpec, account_sid: str, auth_token: str, messaging_service_sid: str = "",
                 from_number: str = "", status_callback: str = "", validity_seconds: str = "",
                 session: requests.Session | None = None, timeout: float = 10.0) -> None:
        super().__init__(spec)
        if not (messaging_service_sid or from_number):
            raise ValueError("twilio-sms needs messaging_service_sid or from_number")
        self.account_sid = account_sid
        self._auth = (account_sid, auth_token)
        self.messaging_service_sid = messaging_service_sid
        self.from_number = from_number
        self.status_callback = status_callback
        self.validity_seconds = validity_seconds
        self.session = session or requests.Session()
        self.timeout = timeout

    def form(self, message: Message) -> dict[str, str]:
        form = {"To": message.to, "Body": message.body}
        if self.messaging_service_sid:
            form["MessagingServiceSid"] = self.messaging_service_sid
        else:
            form["From"] = self.from_number
        if self.status_callback:
            form["StatusCallback"] = self.status_callback
        if self.validity_seconds:
            form["ValidityPeriod"] = self.validity_seconds
        return form

    def send(self, message: Message) -> Receipt:
        guard(self, message)
        url = f"{API}/Accounts/{self.account_sid}/Messages.json"
        resp = self.session.post(url, data=self.form(message), auth=self._auth, timeout=self.timeout)
        if resp.status_code != 201:
            body = resp.json() if resp.headers.get("Content-Type", "").startswith("application/") else {}
            code = str(body.get("code") or body.get("type") or resp.status_code)
            raise DeliveryError(self.name, resp.status_code, code, retryable(resp.status_code))
        data = resp.json()
        return Receipt(self.name, data.get("sid"), str(data.get("status", "queued")))
