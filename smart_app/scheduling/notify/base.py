"""The notification adapter interface: a message in, a receipt or a typed error out."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from fhir_gateway.outbound.baa import AdapterRegistry, PhiGuard

Channel = Literal["sms", "email", "console"]


@dataclass(frozen=True)
class Message:
    channel: Channel
    to: str  # phone number (E.164) or e-mail address; never logged
    body: str
    subject: str = ""
    contains_phi: bool = False  # set by the content policy (reminders.py), checked by the guard
    reference: str = ""  # opaque id (CommunicationRequest) echoed back by delivery callbacks


@dataclass(frozen=True)
class Receipt:
    adapter: str
    provider_id: str | None  # Twilio SID, SendGrid X-Message-Id, …
    status: str  # provider's word: queued, sent, accepted…


class DeliveryError(Exception):
    """The provider refused or failed. ``code`` is the provider's (Twilio 21211, SendGrid field…);
    the message never echoes the provider's text, which can contain the recipient's address."""

    def __init__(self, adapter: str, http_status: int, code: str, retryable: bool) -> None:
        super().__init__(f"{adapter}: delivery failed (HTTP {http_status}, code {code})")
        self.adapter = adapter
        self.http_status = http_status
        self.code = code
        self.retryable = retryable


@runtime_checkable
class Notifier(Protocol):
    name: str
    baa: bool
    phi_capable: bool
    channel: Channel

    def send(self, message: Message) -> Receipt: ...


def guard(adapter: Notifier, message: Message) -> None:
    """The BAA gate: raises before sending PHI to an adapter that may not receive it."""
    PhiGuard.check(adapter, contains_phi=message.contains_phi, purpose="appointment reminder")


def retryable(status: int) -> bool:
    return status == 429 or status >= 500


def adapters_from_settings(settings: Any, config: Mapping[str, Mapping[str, Any]]) -> dict[Channel, Notifier]:
    """Build the configured adapters, with BAA facts from ``settings.baa_signed`` (fail closed).

    ``config``: ``{"twilio-sms": {...credentials...}, "sendgrid": {...}}``; the console adapter is
    always there for development.
    """
    from smart_app.scheduling.notify.console import ConsoleNotifier
    from smart_app.scheduling.notify.sendgrid_email import SendGridEmail
    from smart_app.scheduling.notify.twilio_sms import TwilioSms

    registry = AdapterRegistry.from_settings(settings)
    out: dict[Channel, Notifier] = {"console": ConsoleNotifier(registry.get("console"))}
    if "twilio-sms" in config:
        out["sms"] = TwilioSms(registry.get("twilio-sms"), **config["twilio-sms"])
    if "sendgrid" in config:
        out["email"] = SendGridEmail(registry.get("sendgrid"), **config["sendgrid"])
    return out
