"""v2 primitive values → FHIR primitives (date, dateTime, instant, numbers, booleans).

v2.8 Chapter 2A (DTM, NM, SI, ID); FHIR R4 datatypes page (dateTime needs a zone once a
time is given: timestamps sent without an offset get the clinic's configured offset).
"""

from __future__ import annotations

import base64
import re
from decimal import Decimal, InvalidOperation
from typing import Any

_DTM = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d+)?\s*([+-]\d{2}:?\d{2}|Z)?$")


def dtm(text: str, default_offset: str = "Z", date_only: bool = False) -> str | None:
    """v2 DTM/TS/DT (``YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]``) → FHIR date or dateTime.

    Keeps the sender's precision; returns None for anything that is not a timestamp.
    """
    m = _DTM.match(text.strip())
    if not m:
        return None
    year, month, day, hour, minute, second, frac, zone = m.groups()
    if (month and not 1 <= int(month) <= 12) or (day and not 1 <= int(day) <= 31):
        return None
    date = year + (f"-{month}" if month else "") + (f"-{day}" if month and day else "")
    if date_only or not (day and hour):
        return date
    if int(hour) > 23 or (minute and int(minute) > 59) or (second and int(second) > 60):
        return date
    time = f"{hour}:{minute or '00'}:{second or '00'}"
    if frac and second:
        time += frac[:7]
    if zone is None:
        zone = default_offset
    elif zone != "Z":
        zone = zone.replace(":", "")
        zone = f"{zone[:3]}:{zone[3:]}"
    return f"{date}T{time}{zone}"


def number(text: str) -> int | float | None:
    """NM → JSON number, keeping integers integral; None when not numeric."""
    t = text.strip()
    if not t:
        return None
    try:
        d = Decimal(t.lstrip("+"))
    except InvalidOperation:
        return None
    if not d.is_finite():
        return None
    if d == d.to_integral_value() and "." not in t and "e" not in t.lower():
        return int(d)
    return float(d)


_TRUE = {"Y", "YES", "T", "TRUE", "1"}
_FALSE = {"N", "NO", "F", "FALSE", "0"}


def boolean(text: str) -> bool | None:
    t = text.strip().upper()
    return True if t in _TRUE else False if t in _FALSE else None


def leaf(text: str, fhir_type: str, default_offset: str = "Z") -> Any:
    """Convert leaf text to the FHIR primitive ``fhir_type``; None drops the element."""
    if not text:
        return None
    if fhir_type == "dateTime":
        return dtm(text, default_offset)
    if fhir_type == "date":
        return dtm(text, default_offset, date_only=True)
    if fhir_type == "instant":
        value = dtm(text, default_offset)
        return value if value and "T" in value else None
    if fhir_type in ("decimal",):
        return number(text)
    if fhir_type in ("integer", "positiveInt", "unsignedInt"):
        n = number(text)
        if not isinstance(n, int) or (fhir_type == "positiveInt" and n < 1) or (n < 0 and fhir_type != "integer"):
            return None
        return n
    if fhir_type == "boolean":
        return boolean(text)
    if fhir_type == "base64Binary":
        return base64.b64encode(text.encode("utf-8")).decode("ascii")
    if fhir_type in ("code", "id"):
        return text.strip() or None
    return text
