"""The tolerant fast parser: endings, delimiters, escapes, repetitions, Z and unknown segments."""

from __future__ import annotations

from pathlib import Path

import pytest

from mappers.hl7v2 import MalformedMessage, StructureError, parse
from mappers.hl7v2.parser.encoding import Delimiters, unescape
from tests.mappers.hl7v2.conftest import ADT_A01, read_message

SSN = "123-45-6789"


@pytest.mark.parametrize("sep", ["\r", "\n", "\r\n", "\n\r"])
def test_any_segment_ending(sep: str) -> None:
    msg = parse(ADT_A01.replace("\r", sep))
    assert [s.name for s in msg] == ["MSH", "EVN", "PID", "PV1", "AL1", "ZPI"]
    assert msg.message_type == "ADT" and msg.trigger == "A01" and msg.structure == "ADT_A01"
    assert msg.version == "2.5.1" and msg.control_id == "MSG001"


def test_mllp_framing_bom_and_bytes_are_stripped() -> None:
    msg = parse(("\ufeff\x0b" + ADT_A01 + "\x1c\r").encode("utf-8"))
    assert msg.first("PID") is not None


def test_fields_components_subcomponents_repetitions() -> None:
    pid = parse(ADT_A01).first("PID")
    assert pid is not None
    assert pid.text(3) == "MRN123"
    assert pid.text(3, 4, 2) == "2.16.840.1.1"
    assert pid.first(5).get(2) == "JANE"
    phones = pid.reps(13)
    assert len(phones) == 2 and phones[1].get(4) == "jane@example.org"
    assert pid.text(40) == "" and pid.reps(99) == []  # missing optional fields are just empty


def test_msh_field_numbering() -> None:
    msh = parse(ADT_A01).msh
    assert msh.raw(1) == "|" and msh.raw(2) == "^~\\&" and msh.text(3) == "ADTApp"


def test_custom_encoding_characters() -> None:
    text = ADT_A01.replace("|", "#").replace("^", "$").replace("~", "!").replace("&", "%")
    text = text.replace("MSH#$!\\%", "MSH#$!\\%")
    msg = parse(text)
    assert msg.delimiters == Delimiters("#", "$", "!", "\\", "%")
    pid = msg.first("PID")
    assert pid is not None and pid.text(5, 2) == "JANE" and pid.text(3, 4, 2) == "2.16.840.1.1"


def test_doubled_escape_character_in_msh2_is_tolerated() -> None:
    msg = parse(ADT_A01.replace("MSH|^~\\&|", "MSH|^~\\\\&|", 1))
    assert msg.delimiters == Delimiters()


def test_escape_sequences() -> None:
    d = Delimiters()
    assert unescape("A\\F\\B\\S\\C\\T\\D\\R\\E\\E\\F", d) == "A|B^C&D~E\\F"
    assert unescape("line1\\.br\\line2", d) == "line1\nline2"
    assert unescape("\\X48454C4C4F\\", d) == "HELLO"
    assert unescape("\\H\\bold\\N\\ text", d) == "bold text"
    assert unescape("unterminated \\F", d) == "unterminated \\F"


def test_escapes_resolved_only_at_leaves() -> None:
    msg = parse(ADT_A01.replace("AL1|1|DA|70618^Penicillin^RXNORM", "AL1|1|DA|70618^Pen\\S\\icillin\\T\\x^RXNORM"))
    al1 = msg.first("AL1")
    assert al1 is not None and al1.text(3, 2) == "Pen^icillin&x"


def test_explicit_null_is_empty() -> None:
    msg = parse(ADT_A01.replace("|F|", '|""|'))
    pid = msg.first("PID")
    assert pid is not None and pid.text(8) == "" and not pid.valued(8)


def test_z_segment_kept_unknown_segment_dropped_with_warning() -> None:
    msg = parse(ADT_A01 + "\rQQQ|1|2\r1AB|x\rzab|x")
    assert msg.first("ZPI") is not None and msg.first("ZAB") is not None
    assert msg.first("QQQ") is None
    codes = [(w.code, w.segment) for w in msg.warnings]
    assert ("unknown-segment", "QQQ") in codes
    assert any(w.code == "bad-segment-id" for w in msg.warnings)


@pytest.mark.parametrize("text", ["", "PID|1||X", "MSH", "MSHA^~\\&|x", "MSH|^^^^|A|B|C|D|E||ADT^A01|1|P|2.5"])
def test_malformed_messages_raise_with_position(text: str) -> None:
    with pytest.raises(MalformedMessage) as info:
        parse(text)
    err = info.value
    assert err.ack_code == "AR" and err.segment == "MSH"
    assert err.location.startswith("MSH^1")


def test_errors_never_carry_values() -> None:
    with pytest.raises(MalformedMessage) as info:
        parse(f"MSH|^~\\&|{SSN}|x|||||||")
    assert SSN not in str(info.value)


def test_strict_mode_validates_structure_with_hl7apy() -> None:
    good = "\r".join([
        "MSH|^~\\&|A|B|C|D|20240101120000||ADT^A01^ADT_A01|1|P|2.5",
        "EVN|A01|20240101120000",
        "PID|1||123^^^X^MR||DOE^JOHN",
        "PV1|1|O",
    ])
    assert parse(good, strict=True).first("PID") is not None
    with pytest.raises(StructureError) as info:
        parse(good.replace("EVN|A01|20240101120000\r", "").replace("PID|1|", "PID|1|" + SSN), strict=True)
    assert info.value.error_code == "100" and SSN not in str(info.value)


def test_every_shared_sample_parses(samples: list[Path]) -> None:
    assert len(samples) == 663
    for path in samples:
        msg = parse(read_message(path))
        assert msg.msh.name == "MSH", path.name
