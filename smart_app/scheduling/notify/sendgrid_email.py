"""Twilio SendGrid v3 Mail Send: ``POST /v3/mail/send`` (JSON, Bearer key); success is 202 + X-Message-Id.

Shapes from shared/docs/integrations-notes.md §2.2 and shared/data/notifications/sendgrid/. The
CommunicationRequest id goes into ``custom_args`` so Event Webhook posts can be matched back.
"""
from __future__ import annotations

from typing import Any

import requests

from fhir_gateway.outbound.baa import AdapterSpec, BaaAdapter
from smart_app.scheduling.notify.base import Channel, DeliveryError, Message, Receipt, guard, retryable

API = "https://api.sendgrid.com/v3/mail/send"


class SendGridEmail(BaaAdapter):
    channel: Channel = "email"

    def __init__(self, spec: AdapterSpec, api_key: str, from_email: str, from_name: str = "Telehub",
                 session: requests.Session | None = None, timeout: float = 10.0) -> None:
        super().__init__(spec)
        self._key = api_key
        self.from_email = from_email
        self.from_name = from_name
        self.session = session or requests.Session()
        self.timeout = timeout

    def payload(self, message: Message) -> dict[str, Any]:
        personalization: dict[str, Any] = {"to": [{"email": message.to}]}
        if message.reference:
            personalization["custom_args"] = {"communication_request": message.reference}
        return {"personalizations": [personalization], "from": {"email": self.from_email, "name": self.from_name},
                "subject": message.subject or "Visit reminder",
                "content": [{"type": "text/plain", "value": message.body}]}

    def send(self, message: Message) -> Receipt:
        guard(self, message)
        resp = self.session.post(API, json=self.payload(message), timeout=self.timeout,
                                 headers={"Authorization": f"Bearer {self._key}"})
        if resp.status_code != 202:
            errors = (resp.json() or {}).get("errors", []) if resp.content else []
            code = str((errors[0].get("field") if errors else None) or resp.status_code)
            raise DeliveryError(self.name, resp.status_code, code, retryable(resp.status_code))
        return Receipt(self.name, resp.headers.get("X-Message-Id"), "accepted")
