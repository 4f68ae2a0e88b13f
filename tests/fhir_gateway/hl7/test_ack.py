"""ACK/NAK (v2.5.1 chapter 2: MSA, ERR) valid under hl7apy's strict validation, and PHI-free."""
from __future__ import annotations

from typing import Any

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from fhir_gateway.hl7.ack import Header, ack_code_of, build_ack
from mappers.hl7v2.errors import HL7v2Error, MalformedMessage, MappingError, UnsupportedMessage

HEADER = Header("EHR", "CLINIC", "TELEHUB", "HUB", "MSG-1", "A04", "P", "2.5.1")


def _strict(ack: bytes) -> Any:
    msg = parse_message(ack.decode(), validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    assert msg.validate()
    return msg


def test_aa_echoes_control_id_and_swaps_sender_and_receiver() -> None:
    ack = build_ack(HEADER)
    msg = _strict(ack)
    assert msg.msa.msa_1.to_er7() == "AA"
    assert msg.msa.msa_2.to_er7() == "MSG-1"
    assert msg.msh.msh_3.to_er7() == "TELEHUB" and msg.msh.msh_5.to_er7() == "EHR"
    assert msg.msh.msh_9.to_er7() == "ACK^A04^ACK"
    assert ack_code_of(ack) == "AA"


@pytest.mark.parametrize(("error", "code", "erl"), [
    (MappingError("A04 needs a PID segment", segment="PID"), "AE", "PID^1"),
    (UnsupportedMessage("unsupported message type ZZZ^Z01", segment="MSH", sequence=1, field=9), "AR", "MSH^1^9"),
    (MalformedMessage("bad component", segment="PID", sequence=1, field=7, component=1), "AR", "PID^1^7^1^1"),
])
def test_nak_has_an_err_segment_naming_the_problem(error: HL7v2Error, code: str, erl: str) -> None:
    ack = build_ack(HEADER, error.ack_code, error)
    msg = _strict(ack)
    assert msg.msa.msa_1.to_er7() == code
    assert msg.err.err_2.to_er7() == erl
    assert msg.err.err_3.to_er7().startswith(f"{error.error_code}^")
    assert msg.err.err_3.to_er7().endswith("^HL70357")
    assert msg.err.err_4.to_er7() == "E"


def test_error_text_is_escaped() -> None:
    ack = build_ack(HEADER, "AE", MappingError("a|b^c&d~e\\f"))
    msg = _strict(ack)
    assert msg.err.err_8.to_er7() == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f"


def test_ack_of_an_unreadable_message_still_validates() -> None:
    _strict(build_ack(Header(), "AR", MalformedMessage("no MSH", segment="MSH", sequence=1)))
