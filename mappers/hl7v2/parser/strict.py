"""Strict mode: validate a message against its abstract message structure with hl7apy.

hl7apy knows every version's message structures, segments and datatypes; it is slow
(≈10 messages/s on full parsing), so it runs only when a caller asks for strict mode.
Trigger events that share a structure (ADT^A08 → ADT_A01, SIU^S14 → SIU_S12, …) are
resolved first because hl7apy cannot derive them when MSH-9.3 is empty.
"""

from __future__ import annotations

from mappers.hl7v2.errors import StructureError
from mappers.hl7v2.maps import load
from mappers.hl7v2.parser.message import Message

_SUPPORTED = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2")


def structure_for(msg: Message) -> str:
    """MSH-9.3, or the structure the trigger event uses (HL7 table 0354)."""
    if msg.structure:
        return msg.structure
    key = f"{msg.message_type}_{msg.trigger}"
    table: dict[str, str] = load("structures.json")
    return table.get(key, key)


def validate_structure(msg: Message) -> None:
    """Raise StructureError unless hl7apy accepts the message under STRICT validation."""
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.exceptions import HL7apyException
    from hl7apy.parser import parse_message

    version = msg.version if msg.version in _SUPPORTED else "2.5"
    d = msg.delimiters
    lines = []
    for seg in msg.segments:
        fields = list(seg.fields)
        if seg.name == "MSH":
            del fields[1]
            if len(fields) > 9:
                parts = fields[8].split(d.component)
                parts += [""] * (3 - len(parts))
                parts[2] = structure_for(msg)
                fields[8] = d.component.join(parts[:3])
            if len(fields) > 11:
                fields[11] = version
        lines.append(d.field.join(fields))
    er7 = "\r".join(lines)
    try:
        parse_message(er7, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True, force_validation=True)
    except HL7apyException as exc:
        raise StructureError(f"message fails {structure_for(msg)} structure ({type(exc).__name__})") from None
    except (ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
        raise StructureError(f"message fails {structure_for(msg)} structure ({type(exc).__name__})") from None
