"""MLLP framing, sans-IO: HL7 v2.5.1 Implementation Guide for MLLP (Release 2), section 1.4.

A block is ``<VT=0x0B> payload <FS=0x1C><CR=0x0D>``. :class:`FrameDecoder` is fed whatever
bytes arrive and returns the complete payloads, so one connection can carry many
messages and a message can arrive in pieces. Bytes outside a block are dropped (some
senders put a newline between blocks); a block larger than ``max_size`` is an error:
the connection is then closed, never buffered without bound.
"""
from __future__ import annotations

SB = b"\x0b"
EB = b"\x1c"
CR = b"\x0d"
TRAILER = EB + CR
DEFAULT_MAX_SIZE = 16 * 1024 * 1024


class FrameTooLarge(ValueError):
    """A block exceeded the size limit."""


def frame(payload: bytes) -> bytes:
    """Wrap one message in an MLLP block."""
    return SB + payload + TRAILER


class FrameDecoder:
    """Incremental MLLP block decoder."""

    def __init__(self, max_size: int = DEFAULT_MAX_SIZE) -> None:
        self.max_size = max_size
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while True:
            start = self._buf.find(SB)
            if start < 0:
                self._buf.clear()  # nothing but noise between blocks
                return out
            if start:
                del self._buf[:start]
            end = self._buf.find(TRAILER, 1)
            if end < 0:
                if len(self._buf) > self.max_size + 3:
                    raise FrameTooLarge(f"MLLP block larger than {self.max_size} bytes")
                return out
            out.append(bytes(self._buf[1:end]))
            del self._buf[:end + 2]

    @property
    def pending(self) -> int:
        """Bytes of an unfinished block (a connection closed with some is a truncated message)."""
        return len(self._buf)
