"""Inbound entry point: one HL7 v2 message → one FHIR R4 transaction Bundle.

    >>> conversion = convert(er7_text)
    >>> conversion.bundle["type"]
    'transaction'

Pure: no I/O, no clock, no globals; the same message always gives the same Bundle
(fullUrls and conditional keys are derived from content), which is what lets the MLLP
layer re-apply a re-sent message safely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mappers.hl7v2.context import Context, Options
from mappers.hl7v2.errors import MappingError, UnsupportedMessage
from mappers.hl7v2.finalize import finalize
from mappers.hl7v2.messages.assemble import assemble
from mappers.hl7v2.messages.plan import EVENTS
from mappers.hl7v2.parser import Message, ParseWarning, parse
from mappers.hl7v2.provenance import provenance

# Segments a message type cannot be mapped without (HL7 table 0357 code 101 if absent).
# Each tuple is alternatives: at least one of them must be present.
REQUIRED_SEGMENTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "ADT": (("PID",),), "VXU": (("PID",),), "RDE": (("PID",),), "OMP": (("PID",),), "MDM": (("TXA", "OBX", "ORC"),),
    "SIU": (("SCH",),), "ORU": (("OBR", "OBX", "PID"),), "ORM": (("ORC", "OBR", "PID"),), "OML": (("ORC", "OBR"),),
}


@dataclass(frozen=True)
class Conversion:
    """The Bundle plus what the MLLP layer needs for its ACK and logs (no PHI)."""

    bundle: dict[str, Any]
    message_type: str
    control_id: str
    warnings: list[ParseWarning] = field(default_factory=list)


def event_of(msg: Message) -> str:
    """``ADT^A08``; for MSH-9 without a trigger, the structure's first event."""
    if msg.trigger:
        return f"{msg.message_type}^{msg.trigger}"
    structure = msg.structure
    return f"{msg.message_type}^{structure.split('_', 1)[1]}" if "_" in structure else msg.message_type


def convert(message: str | bytes | Message, options: Options | None = None, *, strict: bool = False) -> Conversion:
    """Convert one message; raises an HL7v2Error subclass the MLLP layer turns into a NAK."""
    msg = message if isinstance(message, Message) else parse(message, strict=strict)
    event = event_of(msg)
    if event not in EVENTS:
        known_type = any(e.startswith(f"{msg.message_type}^") for e in EVENTS)
        raise UnsupportedMessage(
            f"unsupported {'trigger event' if known_type else 'message type'} {event}",
            segment="MSH", sequence=1, field=9,
        ) if known_type else UnsupportedMessage(f"unsupported message type {event}", segment="MSH", sequence=1,
                                                 field=9)
    for choices in REQUIRED_SEGMENTS.get(msg.message_type, ()):
        if all(msg.first(name) is None for name in choices):
            raise MappingError(f"{event} needs a {' or '.join(choices)} segment", segment=choices[0])
    ctx = Context(msg, options or Options())
    assemble(ctx)
    patient = next((r for r in ctx.resources if r["resourceType"] == "Patient" and not r.get("_patch")), None)
    patient_url = ctx.add(patient) if patient is not None else None
    finalize(ctx, patient_url)
    targets = [ctx.urls[r["_key"]] for r in ctx.resources]
    extra = []
    prov = provenance(ctx, targets)
    if prov is not None:
        prov["_key"] = f"Provenance|{msg.msh.raw(3)}|{msg.msh.raw(4)}|{msg.control_id}"
        extra.append(prov)
    from mappers.hl7v2.bundle import build_bundle

    bundle = build_bundle(ctx, extra)
    return Conversion(bundle, event, msg.control_id, list(msg.warnings))
