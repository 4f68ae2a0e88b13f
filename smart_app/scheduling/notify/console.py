"""Development adapter: prints reminders to a stream. PHI-free content only (it ends up in logs)."""
from __future__ import annotations

import sys
import uuid
from typing import TextIO

from fhir_gateway.outbound.baa import AdapterSpec, BaaAdapter
from smart_app.scheduling.notify.base import Channel, Message, Receipt, guard


class ConsoleNotifier(BaaAdapter):
    channel: Channel = "console"

    def __init__(self, spec: AdapterSpec, stream: TextIO | None = None) -> None:
        super().__init__(spec)
        self.stream = stream or sys.stdout
        self.sent: list[Message] = []

    def send(self, message: Message) -> Receipt:
        guard(self, message)
        masked = message.to[:2] + "…" + message.to[-2:] if len(message.to) > 6 else "…"
        self.stream.write(f"[reminder → {message.channel} {masked}] {message.subject} {message.body}\n".replace(
            "  ", " "))
        self.sent.append(message)
        return Receipt(self.name, f"console-{uuid.uuid4().hex[:12]}", "sent")
