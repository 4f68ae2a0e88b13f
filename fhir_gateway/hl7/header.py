"""The PHI-free facts of a message header: who sent it, its control id, its event.

``sender`` (MSH-3 and MSH-4, application and facility) scopes the control id: two
systems may both send message ``1``, so duplicates are recognised per sender.
"""
from __future__ import annotations

from fhir_gateway.hl7.ack import Header, escape
from mappers.hl7v2.parser import Message


def _hd(msg: Message, n: int) -> str:
    """An HD field re-encoded with the default delimiters (the sender may use others)."""
    return "^".join(escape(msg.msh.text(n, i)) for i in (1, 2, 3)).rstrip("^")


def header_of(msg: Message) -> Header:
    return Header(sending_application=_hd(msg, 3), sending_facility=_hd(msg, 4),
                  receiving_application=_hd(msg, 5), receiving_facility=_hd(msg, 6),
                  control_id=msg.control_id, trigger=msg.trigger, processing_id=msg.msh.text(11, 1) or "P",
                  version=msg.version or "2.5.1")


def sender_of(header: Header) -> str:
    return f"{header.sending_application}|{header.sending_facility}"[:255]


def event_name(msg: Message) -> str:
    return f"{msg.message_type}^{msg.trigger}"[:32]
