"""Encoding characters (MSH-1/MSH-2) and escape sequences.

v2.8 Chapter 2, 2.5.4 (message delimiters) and 2.7 (use of escape sequences in text fields).
Senders may declare custom delimiters; every split and unescape reads them from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mappers.hl7v2.errors import MalformedMessage


@dataclass(frozen=True, slots=True)
class Delimiters:
    """The five delimiters a message declares in MSH-1 and MSH-2."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    @classmethod
    def from_msh(cls, header: str) -> Delimiters:
        """Read MSH-1 and MSH-2 from the first segment's text.

        Tolerates a doubled escape character (``^~\\\\&``, common when messages were
        pasted from source code) and a missing subcomponent separator.
        """
        if len(header) < 8 or not header.startswith("MSH"):
            raise MalformedMessage("message does not start with an MSH segment", segment="MSH")
        field = header[3]
        if field.isalnum() or field in " \r\n":
            raise MalformedMessage("invalid field separator", segment="MSH", field=1)
        end = header.find(field, 4)
        enc = header[4:] if end < 0 else header[4:end]
        if len(enc) < 3:
            raise MalformedMessage("invalid encoding characters", segment="MSH", field=2)
        chars = list(enc)
        if len(chars) >= 5 and chars[2] == chars[3]:
            del chars[3]  # "^~\\&": doubled escape character
        component, repetition, escape = chars[0], chars[1], chars[2]
        subcomponent = chars[3] if len(chars) > 3 else "&"
        found = {field, component, repetition, escape, subcomponent}
        if len(found) != 5 or any(c.isalnum() for c in found):
            raise MalformedMessage("encoding characters are not distinct", segment="MSH", field=2)
        return cls(field, component, repetition, escape, subcomponent)


_HEX = re.compile(r"[0-9A-Fa-f]+")


def unescape(text: str, d: Delimiters) -> str:
    """Resolve escape sequences in a leaf value (\\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\Xhh\\ \\.br\\).

    Formatting (\\H\\, \\N\\) and character-set switches (\\C..\\, \\M..\\, \\Z..\\) are dropped;
    an unterminated escape is kept literally.
    """
    esc = d.escape
    if esc not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    simple = {"F": d.field, "S": d.component, "T": d.subcomponent, "R": d.repetition, "E": esc}
    while i < n:
        ch = text[i]
        if ch != esc:
            out.append(ch)
            i += 1
            continue
        end = text.find(esc, i + 1)
        if end < 0:
            out.append(text[i:])
            break
        seq = text[i + 1 : end]
        if seq in simple:
            out.append(simple[seq])
        elif seq.startswith("X") and _HEX.fullmatch(seq[1:] or "-"):
            try:
                out.append(bytes.fromhex(seq[1:]).decode("utf-8", "replace"))
            except ValueError:
                out.append(text[i : end + 1])
        elif seq == ".br":
            out.append("\n")
        elif seq in ("H", "N") or seq[:1] in ("C", "M", "Z") or seq.startswith("."):
            pass
        else:
            out.append(text[i : end + 1])
        i = end + 1
    return "".join(out)
