"""Acknowledgements (original mode): HL7 v2.5.1 chapter 2, sections 2.9.2 and 2.15.8 (MSA), 2.15.5 (ERR).

Built as ER7 text directly: an ACK is three fixed segments and is on the hot path of
every message (hl7apy would cost milliseconds); the tests check every shape against
hl7apy's strict validation. The error text names positions and HL7 table 0357 codes,
never field values (no PHI in a NAK).
"""
from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass

from mappers.hl7v2.errors import HL7v2Error

_COUNTER = itertools.count(1)
_PREFIX = f"{os.getpid() % 100000:05d}"
ERROR_TEXT = {"100": "Segment sequence error", "101": "Required field missing", "102": "Data type error",
              "103": "Table value not found", "200": "Unsupported message type", "201": "Unsupported event code",
              "202": "Unsupported processing id", "203": "Unsupported version id",
              "205": "Duplicate key identifier", "207": "Application internal error"}


@dataclass(frozen=True)
class Header:
    """What an ACK echoes from the message it answers (PHI-free)."""

    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    control_id: str = ""
    trigger: str = ""
    processing_id: str = "P"
    version: str = "2.5.1"


def escape(text: str) -> str:
    """ER7 escaping (2.7.4) for the default encoding characters."""
    out = text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\").replace("&", "\\T\\")
    return out.replace("~", "\\R\\").replace("\r", " ").replace("\n", " ")


def _component(text: str) -> str:
    return escape(text)


def timestamp(now: float | None = None) -> str:
    t = time.gmtime(now if now is not None else time.time())
    return time.strftime("%Y%m%d%H%M%S", t) + "+0000"


def control_id() -> str:
    """A unique control id for our own messages: time, process and a counter (MSH-10 is ST(20) in 2.5.1)."""
    return f"T{int(time.time()) % 10**9:09d}{_PREFIX}{next(_COUNTER) % 100000:05d}"


def build_ack(header: Header, code: str = "AA", error: HL7v2Error | None = None, *, text: str = "",
              now: float | None = None) -> bytes:
    """``MSH|…|ACK^trigger^ACK``, ``MSA|code|control id``, and ``ERR`` when there is an error."""
    trigger = header.trigger if header.trigger.isalnum() and len(header.trigger) <= 3 else ""
    msh = "|".join([
        "MSH", "^~\\&", _component(header.receiving_application or "TELEHUB"),
        _component(header.receiving_facility or "TELEHUB"), _component(header.sending_application),
        _component(header.sending_facility), timestamp(now), "", f"ACK^{trigger}^ACK" if trigger else "ACK^^ACK",
        control_id(), header.processing_id if header.processing_id in ("P", "D", "T") else "P",
        header.version if header.version in SUPPORTED_VERSIONS else "2.5.1",
    ])
    segments = [msh, f"MSA|{code}|{_component(header.control_id[:199]) or 'UNKNOWN'}"]  # MSA-2 is required
    if error is not None:
        segments.append(err_segment(error.error_code, error.location, text or error.reason))
    elif code != "AA":
        segments.append(err_segment("207", "", text or "Application internal error"))
    return ("\r".join(segments) + "\r").encode("utf-8")


def err_segment(code: str, location: str, text: str) -> str:
    """ERR-2 location (ERL: segment^sequence^field^repetition^component), ERR-3 code, ERR-4 severity, ERR-8."""
    erl = ""
    if location:
        parts = location.split("^")
        fields = [parts[0], parts[1] if len(parts) > 1 else "1", *parts[2:3]]
        if len(parts) > 3:
            fields += ["1", parts[3]]  # ERL has the field repetition before the component
        erl = "^".join(fields)
    cwe = f"{code}^{_component(ERROR_TEXT.get(code, 'Application error'))}^HL70357"
    return f"ERR||{erl}|{cwe}|E||||{_component(text[:250])}"


SUPPORTED_VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8")


def ack_code_of(payload: bytes) -> str | None:
    """MSA-1 of an ACK (what a sender needs), read without a full parse."""
    for seg in payload.replace(b"\n", b"\r").split(b"\r"):
        if seg.startswith(b"MSA"):
            fields = seg.split(seg[3:4] or b"|")
            return fields[1].decode("ascii", "replace") if len(fields) > 1 else None
    return None
