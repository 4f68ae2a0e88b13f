"""Tolerant ER7 parsing: the inbound fast path.

Accepts CR, LF or CRLF segment endings, MLLP framing bytes, a UTF-8 BOM, custom
delimiters and trailing empties. Z-segments are kept; segments HL7 never defined are
dropped with a warning. Only a missing or unreadable MSH is fatal.
"""

from __future__ import annotations

import re

from mappers.hl7v2.errors import MalformedMessage
from mappers.hl7v2.maps import known_segments
from mappers.hl7v2.parser.encoding import Delimiters
from mappers.hl7v2.parser.message import Message, ParseWarning, Segment

_LINES = re.compile(r"\r\n|\r|\n")
_NAME = re.compile(r"[A-Z][A-Z0-9]{2}")


def parse(text: str | bytes, *, strict: bool = False) -> Message:
    """Parse one ER7 message; with ``strict`` also validate its structure with hl7apy.

    Raises MalformedMessage when there is no usable MSH, StructureError in strict mode.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = text.strip("\ufeff\x0b\x1c\r\n\t ")
    if not text.startswith("MSH"):
        start = text.find("MSH")
        if start < 0 or start > 64:
            raise MalformedMessage("message does not start with an MSH segment", segment="MSH", sequence=1)
        text = text[start:]
    d = Delimiters.from_msh(text[:64])
    known = known_segments()
    segments: list[Segment] = []
    warnings: list[ParseWarning] = []
    for number, line in enumerate(_LINES.split(text), start=1):
        if not line.strip():
            continue
        fields = line.split(d.field)
        name = fields[0].strip().upper()
        if name == "MSH":
            fields.insert(1, d.field)
        if not _NAME.fullmatch(name):
            # the "name" of a broken line may be the start of free text: never echo it
            warnings.append(ParseWarning("bad-segment-id", "???", number, "segment ignored: invalid segment id"))
            continue
        if name not in known and not name.startswith("Z"):
            warnings.append(ParseWarning("unknown-segment", name, number, "segment ignored: not an HL7 v2 segment"))
            continue
        segments.append(Segment(name, fields, d, number))
    if not segments or segments[0].name != "MSH":
        raise MalformedMessage("message does not start with an MSH segment", segment="MSH", sequence=1)
    msg = Message(segments, d, warnings)
    if not msg.message_type:
        raise MalformedMessage("MSH-9 message type is empty", segment="MSH", sequence=1, field=9)
    if strict:
        from mappers.hl7v2.parser.strict import validate_structure

        validate_structure(msg)
    return msg
