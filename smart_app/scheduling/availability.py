"""A provider's availability rules: weekly hours in their own time zone, buffers, visit types, blackouts.

Pure data with validation and a JSON form (kept on the provider's Schedule as an extension, so
the rules travel with the FHIR data and any replica of the app can regenerate slots). Times are
wall-clock times in ``timezone`` (an IANA name, resolved with :mod:`zoneinfo`).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from smart_app.scheduling.codes import MODALITIES, Modality
from smart_app.scheduling.errors import InvalidInput

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_HOURS_LINE = re.compile(r"^(?P<day>[a-z]{3})[a-z]*\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})$")


@dataclass(frozen=True)
class WeeklyHours:
    """One working range on a weekday (0 = Monday). ``end <= start`` means it runs past midnight."""

    weekday: int
    start: time
    end: time


@dataclass(frozen=True)
class VisitType:
    """A bookable kind of visit: its slot length and how it happens."""

    code: str
    display: str
    minutes: int
    modality: Modality


@dataclass(frozen=True)
class Availability:
    timezone: str
    hours: tuple[WeeklyHours, ...]
    visit_types: tuple[VisitType, ...]
    buffer_before: int = 0  # minutes kept free before each visit
    buffer_after: int = 0  # minutes kept free after each visit (notes, overrun)
    blackouts: tuple[date, ...] = ()  # local dates with no availability (holidays, leave)
    horizon_days: int = 28  # how far ahead slots are generated
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        validate(self)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def visit_type(self, code: str) -> VisitType:
        for vt in self.visit_types:
            if vt.code == code:
                return vt
        raise InvalidInput(f"unknown visit type {code!r}", "visit_type")

    # -- JSON --------------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps({
            "timezone": self.timezone,
            "hours": [{"day": WEEKDAYS[h.weekday], "start": h.start.strftime("%H:%M"),
                       "end": h.end.strftime("%H:%M")} for h in self.hours],
            "visitTypes": [{"code": v.code, "display": v.display, "minutes": v.minutes, "modality": v.modality}
                           for v in self.visit_types],
            "bufferBefore": self.buffer_before, "bufferAfter": self.buffer_after,
            "blackouts": [d.isoformat() for d in self.blackouts], "horizonDays": self.horizon_days,
        }, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Availability:
        try:
            raw = json.loads(text)
            return cls(
                timezone=raw["timezone"],
                hours=tuple(WeeklyHours(_weekday(h["day"]), _time(h["start"]), _time(h["end"])) for h in raw["hours"]),
                visit_types=tuple(VisitType(v["code"], v["display"], int(v["minutes"]), v["modality"])
                                  for v in raw["visitTypes"]),
                buffer_before=int(raw.get("bufferBefore", 0)), buffer_after=int(raw.get("bufferAfter", 0)),
                blackouts=tuple(date.fromisoformat(d) for d in raw.get("blackouts", [])),
                horizon_days=int(raw.get("horizonDays", 28)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"availability rules are malformed: {exc}") from None


def validate(rules: Availability) -> None:
    """Refuse rules that cannot generate sensible slots, naming the field."""
    try:
        ZoneInfo(rules.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {rules.timezone!r}", "timezone") from None
    if not rules.visit_types:
        raise InvalidInput("at least one visit type is needed", "visit_types")
    codes = [v.code for v in rules.visit_types]
    if len(set(codes)) != len(codes):
        raise InvalidInput("visit type codes must be unique", "visit_types")
    for v in rules.visit_types:
        if not _CODE.match(v.code):
            raise InvalidInput(f"visit type code {v.code!r}: lower-case letters, digits and '-'", "visit_types")
        if not 5 <= v.minutes <= 480:
            raise InvalidInput(f"visit type {v.code}: minutes must be 5-480", "visit_types")
        if v.modality not in MODALITIES:
            raise InvalidInput(f"visit type {v.code}: modality must be one of {', '.join(MODALITIES)}",
                               "visit_types")
    for h in rules.hours:
        if not 0 <= h.weekday <= 6:
            raise InvalidInput("weekday must be 0 (Monday) to 6 (Sunday)", "hours")
        if h.start == h.end:
            raise InvalidInput("a working range cannot be empty", "hours")
    if not (0 <= rules.buffer_before <= 120 and 0 <= rules.buffer_after <= 120):
        raise InvalidInput("buffers must be 0-120 minutes", "buffers")
    if not 1 <= rules.horizon_days <= 180:
        raise InvalidInput("horizon must be 1-180 days", "horizon_days")


def _weekday(text: str) -> int:
    key = str(text).strip().lower()[:3]
    if key not in WEEKDAYS:
        raise InvalidInput(f"unknown weekday {text!r}", "hours")
    return WEEKDAYS.index(key)


def _time(text: str) -> time:
    try:
        hh, mm = str(text).strip().split(":")
        return time(int(hh) % 24, int(mm)) if int(hh) == 24 and int(mm) == 0 else time(int(hh), int(mm))
    except ValueError:
        raise InvalidInput(f"time {text!r} must be HH:MM", "hours") from None


# -- the editor's text forms (one item per line; readable, keyboard-friendly) -----------------------
def parse_hours(text: str) -> tuple[WeeklyHours, ...]:
    """``mon 09:00-12:00`` per line."""
    out = []
    for n, line in enumerate(_lines(text), 1):
        m = _HOURS_LINE.match(line.lower())
        if not m:
            raise InvalidInput(f"hours line {n}: write it as 'mon 09:00-17:00'", "hours")
        out.append(WeeklyHours(_weekday(m["day"]), _time(m["start"]), _time(m["end"])))
    return tuple(out)


def format_hours(hours: tuple[WeeklyHours, ...]) -> str:
    return "\n".join(f"{WEEKDAYS[h.weekday]} {h.start:%H:%M}-{h.end:%H:%M}" for h in hours)


def parse_visit_types(text: str) -> tuple[VisitType, ...]:
    """``code | display | minutes | modality`` per line."""
    out = []
    for n, line in enumerate(_lines(text), 1):
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 4 or not parts[2].isdigit():
            raise InvalidInput(f"visit type line {n}: write it as 'code | Display | 30 | video'", "visit_types")
        modality = parts[3].lower()
        if modality not in MODALITIES:
            raise InvalidInput(f"visit type line {n}: modality must be one of {', '.join(MODALITIES)}",
                               "visit_types")
        out.append(VisitType(parts[0].lower(), parts[1], int(parts[2]), modality))
    return tuple(out)


def format_visit_types(types: tuple[VisitType, ...]) -> str:
    return "\n".join(f"{v.code} | {v.display} | {v.minutes} | {v.modality}" for v in types)


def parse_dates(text: str) -> tuple[date, ...]:
    try:
        return tuple(sorted({date.fromisoformat(line) for line in _lines(text)}))
    except ValueError:
        raise InvalidInput("blackout dates must be YYYY-MM-DD, one per line", "blackouts") from None


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace("\r", "").split("\n") if line.strip()]
