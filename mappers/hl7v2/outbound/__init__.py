"""Outbound FHIR R4 → HL7 v2 (sans-IO): Telehub's own events as v2 messages for a clinic's engine.

    >>> from mappers.hl7v2.outbound import Change, OutboundConfig, build_messages
    >>> [m.event for m in build_messages(Change(patient), OutboundConfig(), control_id="1", now="20260101")]
    ['ADT^A04']

- :func:`events_for` decides which trigger events a change is (``events.py``, one rule per type);
- :func:`build_message` builds one with hl7apy and validates it strictly (``builder.py``);
- :class:`OutboundConfig`: version (2.5.1 default), sending/receiving application and facility.
Pure: the clock (``now``) and the control id are passed in.
"""
from __future__ import annotations

from dataclasses import dataclass

from mappers.hl7v2.outbound.builder import OutboundError, assemble, msh
from mappers.hl7v2.outbound.config import OutboundConfig
from mappers.hl7v2.outbound.context import Build, Change
from mappers.hl7v2.outbound.events import events_for
from mappers.hl7v2.outbound.registry import MESSAGES


@dataclass(frozen=True)
class OutboundMessage:
    event: str  # SIU^S12
    structure: str  # SIU_S12
    control_id: str
    er7: str  # segments separated (and ended) by CR

    def encode(self) -> bytes:
        return self.er7.encode("utf-8")


def build_message(change: Change, event: str, config: OutboundConfig, *, control_id: str,
                  now: str) -> OutboundMessage:
    spec = MESSAGES.get(event)
    if spec is None:
        raise OutboundError(f"no outbound mapping for {event}")
    rtype = change.resource.get("resourceType")
    if rtype not in spec.resource_types:
        raise OutboundError(f"{event} is built from {' or '.join(spec.resource_types)}, not {rtype}")
    message_type, trigger = event.split("^")
    build = Build(change, config, control_id, now)
    header = msh(config, message_type, trigger, spec.structure, control_id, now)
    er7 = assemble(spec.structure, config.version, header, spec.builder(build, trigger))
    return OutboundMessage(event, spec.structure, control_id, er7)


def build_messages(change: Change, config: OutboundConfig, *, control_id: str, now: str) -> list[OutboundMessage]:
    """Every message a change calls for (control ids ``<control_id>``, ``<control_id>-2``, …)."""
    events = events_for(change.resource, change.previous)
    return [build_message(change, event, config, control_id=control_id if i == 0 else f"{control_id}-{i + 1}",
                          now=now) for i, event in enumerate(events)]


__all__ = ["MESSAGES", "Change", "OutboundConfig", "OutboundError", "OutboundMessage", "build_message",
           "build_messages", "events_for"]
