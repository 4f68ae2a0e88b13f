"""Value normalisation shared by index extraction (write time) and query compilation (read time).

Both sides must agree byte for byte, so the rules live here once:

* strings: case- and accent-insensitive, whitespace collapsed
  (https://hl7.org/fhir/R4/search.html#string);
* dates: every date/dateTime/instant is an *implicit range* ``[low, high]`` in
  microseconds since the Unix epoch, UTC, from its precision
  (https://hl7.org/fhir/R4/search.html#date);
* numbers: an implicit range from the number of significant digits
  (https://hl7.org/fhir/R4/search.html#number).
"""
from __future__ import annotations

import calendar
import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

_WS = re.compile(r"\s+")
MICROS = 1_000_000
# Sentinels for open-ended periods; well inside BigInteger range.
MIN_TIME = -62_135_596_800 * MICROS  # 0001-01-01T00:00:00Z
MAX_TIME = 253_402_300_799 * MICROS + 999_999  # 9999-12-31T23:59:59.999999Z

_DATE_RE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2})(?::(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def normalize_string(value: str) -> str:
    """Lower-case, strip accents and collapse whitespace, for ``string`` search."""
    if value.isascii():  # the common case: no accents to strip
        return _WS.sub(" ", value).strip().casefold()
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _WS.sub(" ", stripped).strip().casefold()


class DateFormatError(ValueError):
    """Raised for a value that is not a FHIR date, dateTime or instant."""


def _epoch_micros(dt: datetime) -> int:
    return calendar.timegm(dt.utctimetuple()) * MICROS + dt.microsecond


def date_range(value: str) -> tuple[int, int]:
    """Return the implicit ``[low, high]`` range (inclusive, microseconds UTC) of a FHIR date value.

    ``2020`` covers the whole year, ``2020-03-04T10:00`` the whole minute. A time
    without a zone is taken as UTC (the spec leaves it to the server).
    """
    match = _DATE_RE.match(value.strip())
    if not match:
        raise DateFormatError(value)
    g = match.groupdict()
    try:
        year = int(g["y"])
        if g["m"] is None:
            start = datetime(year, 1, 1, tzinfo=UTC)
            end = datetime(year + 1, 1, 1, tzinfo=UTC) if year < 9999 else None
        elif g["d"] is None:
            month = int(g["m"])
            start = datetime(year, month, 1, tzinfo=UTC)
            end = (datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
                   if not (year == 9999 and month == 12) else None)
        elif g["H"] is None:
            start = datetime(year, int(g["m"]), int(g["d"]), tzinfo=UTC)
            end = start + timedelta(days=1) if start.date() < datetime.max.date() else None
        else:
            tz = UTC
            if g["tz"] and g["tz"] != "Z":
                sign = 1 if g["tz"][0] == "+" else -1
                tz = timezone(sign * timedelta(hours=int(g["tz"][1:3]), minutes=int(g["tz"][4:6])))
            frac = g["f"] or ""
            micro = int((frac + "000000")[:6]) if frac else 0
            local = datetime(year, int(g["m"]), int(g["d"]), int(g["H"]), int(g["M"] or 0),
                             int(g["S"] or 0), micro, tzinfo=tz)
            if g["M"] is None:
                step = timedelta(hours=1)
            elif g["S"] is None:
                step = timedelta(minutes=1)
            elif not frac:
                step = timedelta(seconds=1)
            else:
                step = timedelta(microseconds=10 ** max(0, 6 - len(frac)))
            start = local.astimezone(UTC)
            end = start + step
    except (ValueError, OverflowError) as exc:
        raise DateFormatError(value) from exc
    low = _epoch_micros(start)
    high = _epoch_micros(end) - 1 if end is not None else MAX_TIME
    return low, high


def instant_to_micros(dt: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    return _epoch_micros(dt.astimezone(UTC))


def micros_to_instant(micros: int) -> str:
    """Render microseconds since the epoch as a FHIR instant (UTC, millisecond precision or finer)."""
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text[:-3] + "+00:00" if text.endswith("000") else text + "+00:00"


def number_range(value: str) -> tuple[float, float, float]:
    """Return ``(value, low, high)`` for a search number: the range implied by its significant figures.

    ``100`` matches [99.5, 100.5); ``1e2`` has one significant figure and matches [50, 150).
    """
    try:
        dec = Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(value) from exc
    if not dec.is_finite():
        raise ValueError(value)
    exponent = dec.as_tuple().exponent
    assert isinstance(exponent, int)
    half = Decimal(5) * Decimal(10) ** (exponent - 1)
    return float(dec), float(dec - half), float(dec + half)
