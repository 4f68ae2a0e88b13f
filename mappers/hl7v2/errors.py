"""Typed errors for inbound HL7 v2, carrying what an ACK/NAK needs.

The MLLP layer renders these once into MSA/ERR (STYLE habit 7). Messages carry
positions (segment id, sequence, field number) and HL7 table 0357 codes only,
never field values: an exception text must not leak PHI.

    HL7v2Error
     ├── MalformedMessage      AR / 0357 code 100-102: cannot be read at all
     ├── UnsupportedMessage    AR / 200-201: readable, but not a type we map
     ├── StructureError        AE / 100: strict mode, fails the v2 structure
     └── MappingError          AE / 101: a segment required for the mapping is absent
"""

from __future__ import annotations


class HL7v2Error(Exception):
    """Base class; ``ack_code`` and ``error_code`` feed MSA-1 and ERR-3."""

    ack_code = "AE"
    error_code = "207"  # application internal error (HL7 table 0357)

    def __init__(
        self,
        reason: str,
        *,
        segment: str | None = None,
        sequence: int | None = None,
        field: int | None = None,
        component: int | None = None,
    ) -> None:
        self.reason = reason
        self.segment = segment
        self.sequence = sequence
        self.field = field
        self.component = component
        super().__init__(self._render())

    def _render(self) -> str:
        return f"{self.reason} at {self.location}" if self.location else self.reason

    @property
    def location(self) -> str:
        """ERR-2 style location: ``PID^1^7^1`` (segment^sequence^field^component)."""
        if not self.segment:
            return ""
        parts = [self.segment, str(self.sequence or 1)]
        if self.field is not None:
            parts.append(str(self.field))
            if self.component is not None:
                parts.append(str(self.component))
        return "^".join(parts)


class MalformedMessage(HL7v2Error):
    """The bytes are not an HL7 v2 message (no MSH, bad encoding characters)."""

    ack_code = "AR"
    error_code = "100"


class UnsupportedMessage(HL7v2Error):
    """MSH-9 names a message type or trigger event the hub does not map."""

    ack_code = "AR"
    error_code = "200"


class StructureError(HL7v2Error):
    """Strict mode: the message does not follow its abstract message structure."""

    ack_code = "AE"
    error_code = "100"


class MappingError(HL7v2Error):
    """A segment or field the FHIR mapping requires is missing or unusable."""

    ack_code = "AE"
    error_code = "101"
