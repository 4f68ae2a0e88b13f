"""Assembling a v2 message with hl7apy, validated under its strict level before it leaves.

Segments are composed as ER7 field lists by the pure functions beside this module;
here hl7apy parses each into its object model, places it in the message structure's
groups (``SIU_S12_RESOURCES`` → ``SIU_S12_PERSONNEL_RESOURCE`` …) and validates the
whole (cardinality, required fields, datatypes, lengths). A message hl7apy refuses is
never queued: :class:`OutboundError` names the element, never a value.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Group, Message
from hl7apy.exceptions import HL7apyException
from hl7apy.parser import parse_segment

from mappers.hl7v2.outbound.config import OutboundConfig


class OutboundError(ValueError):
    """The resource cannot become a valid v2 message (no PHI in the text)."""


@dataclass
class Seg:
    """One segment: its name and fields 1..n as ER7 text (``fields[0]`` is field 1)."""

    name: str
    fields: list[str]

    def er7(self) -> str:
        values = list(self.fields)
        while values and not values[-1]:
            values.pop()
        return "|".join([self.name, *values])


@dataclass
class Grp:
    """A group of the message structure, by its hl7apy name (``SIU_S12_PATIENT``)."""

    name: str
    children: list[Seg | Grp] = field(default_factory=list)


def seg(name: str, values: Mapping[int, str]) -> Seg:
    """A segment from {field number: ER7 value}."""
    size = max(values, default=0)
    return Seg(name, [values.get(i, "") for i in range(1, size + 1)])


def msh(config: OutboundConfig, message_type: str, trigger: str, structure: str, control_id: str,
        now: str) -> Seg:
    from mappers.hl7v2.outbound.values import esc

    return Seg("MSH", ["^~\\&", esc(config.sending_application), esc(config.sending_facility),
                       esc(config.receiving_application), esc(config.receiving_facility), now, "",
                       f"{message_type}^{trigger}^{structure}", esc(control_id), config.processing_id,
                       config.version])


def _add(parent: Message | Group, children: list[Seg | Grp], version: str) -> None:
    for child in children:
        if isinstance(child, Grp):
            group = parent.add_group(child.name)
            _add(group, child.children, version)
        else:
            parent.add(parse_segment(child.er7(), version=version, validation_level=VALIDATION_LEVEL.STRICT))


def assemble(structure: str, version: str, header: Seg, body: list[Seg | Grp]) -> str:
    """Build the message with hl7apy, validate it strictly, return ER7 (segments end with CR)."""
    try:
        msg = Message(structure, version=version, validation_level=VALIDATION_LEVEL.STRICT)
        msg.msh = parse_segment(header.er7(), version=version, validation_level=VALIDATION_LEVEL.STRICT)
        _add(msg, body, version)
        msg.validate()
    except HL7apyException as exc:
        raise OutboundError(f"{structure} {version} fails hl7apy strict validation: {_safe(exc)}") from None
    text: str = msg.to_er7()
    return text + "\r"


def _safe(exc: Exception) -> str:
    """hl7apy errors name elements (``SCH.SCH_16``); cut anything after a colon, which may hold a value."""
    return str(exc).split(":", 1)[0][:120]


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
