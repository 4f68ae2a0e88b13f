"""MLLP framing (HL7 v2.5.1 MLLP Release 2, section 1.4): blocks, split reads, noise, size limit."""
from __future__ import annotations

import pytest

from fhir_gateway.hl7.client import split_messages
from fhir_gateway.hl7.mllp import FrameDecoder, FrameTooLarge, frame


def test_frame_wraps_in_vt_fs_cr() -> None:
    assert frame(b"MSH|x") == b"\x0bMSH|x\x1c\x0d"


def test_decoder_returns_several_blocks_from_one_read() -> None:
    assert FrameDecoder().feed(frame(b"A") + frame(b"B") + frame(b"C")) == [b"A", b"B", b"C"]


def test_decoder_reassembles_a_block_split_anywhere() -> None:
    data = frame(b"MSH|^~\\&|one\rPID|1") + frame(b"MSH|two")
    for cut in range(1, len(data)):
        decoder = FrameDecoder()
        assert decoder.feed(data[:cut]) + decoder.feed(data[cut:]) == [b"MSH|^~\\&|one\rPID|1", b"MSH|two"]


def test_decoder_drops_noise_between_blocks() -> None:
    assert FrameDecoder().feed(b"\r\n" + frame(b"A") + b"\n\n" + frame(b"B")) == [b"A", b"B"]


def test_decoder_refuses_an_endless_block() -> None:
    decoder = FrameDecoder(max_size=100)
    with pytest.raises(FrameTooLarge):
        decoder.feed(b"\x0b" + b"x" * 200)


def test_a_lone_fs_inside_a_block_is_content() -> None:
    assert FrameDecoder().feed(b"\x0bA\x1cB\x1c\x0d") == [b"A\x1cB"]


def test_split_messages_of_an_er7_file() -> None:
    text = b"\xef\xbb\xbfMSH|1\nPID|1\n\nMSH|2\r\nPID|2\n"
    assert split_messages(text) == [b"MSH|1\rPID|1\r", b"MSH|2\rPID|2\r"]
    assert split_messages(frame(b"MSH|1") + frame(b"MSH|2")) == [b"MSH|1", b"MSH|2"]
