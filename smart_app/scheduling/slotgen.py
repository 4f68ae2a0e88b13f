"""Pure slot generation: availability rules + a time window → the slots that should exist.

No I/O, no clock: the caller passes the window. Wall-clock hours are turned into real
instants with :mod:`zoneinfo`, and slots are laid out in *elapsed* time, so a day with a
daylight-saving change gets exactly as many slots as its working hours really last:

- a wall time in the spring-forward gap (02:30 in New York on the second Sunday of March)
  does not exist; it moves to the first real instant after the gap (03:00 EDT);
- a wall time in the fall-back overlap (01:30 happens twice) means its first occurrence
  (``fold=0``, PEP 495).

Each visit type is laid out as its own series (block = buffer before + visit + buffer after);
series of different lengths overlap in time, and booking one marks the overlapping others
unavailable (see :mod:`smart_app.scheduling.booking`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from smart_app.scheduling.availability import Availability, VisitType


@dataclass(frozen=True, order=True)
class SlotSpec:
    """A slot that the rules say should exist (instants in UTC)."""

    start: datetime
    end: datetime
    visit_type: VisitType

    @property
    def key(self) -> tuple[str, str]:
        """Identity across regenerations: visit type + start instant."""
        return slot_key(self.visit_type.code, self.start)


def slot_key(visit_type_code: str, start: datetime) -> tuple[str, str]:
    return visit_type_code, start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def wall_to_utc(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The real instant of a wall-clock time: first occurrence if repeated, end of the gap if skipped."""
    local = datetime.combine(day, wall, tzinfo=zone)  # fold=0
    instant = local.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None):
        return instant
    # Nonexistent (spring-forward gap): the first minute after the gap whose wall time exists.
    probe = local.replace(fold=1).astimezone(UTC)  # interpreted with the offset before the gap → earlier instant
    for _ in range(24 * 60):
        probe += timedelta(minutes=1)
        back = probe.astimezone(zone).replace(tzinfo=None)
        if back >= local.replace(tzinfo=None):
            return probe
    return instant  # pragma: no cover - no real zone has a gap longer than a day


def working_ranges(rules: Availability, first: date, last: date) -> list[tuple[datetime, datetime]]:
    """The real (UTC) working intervals of local dates ``first``..``last``, blackouts removed."""
    zone = rules.zone
    blackouts = set(rules.blackouts)
    out = []
    day = first
    while day <= last:
        if day not in blackouts:
            for h in rules.hours:
                if h.weekday != day.weekday():
                    continue
                end_day = day if h.end > h.start else day + timedelta(days=1)
                start = wall_to_utc(day, h.start, zone)
                end = wall_to_utc(end_day, h.end, zone)
                if end > start:
                    out.append((start, end))
        day += timedelta(days=1)
    return sorted(out)


def generate(rules: Availability, window_start: datetime, window_end: datetime) -> list[SlotSpec]:
    """Every slot the rules give whose start lies in ``[window_start, window_end)``, sorted."""
    if window_start.tzinfo is None or window_end.tzinfo is None:
        raise ValueError("window bounds must be timezone-aware")
    zone = rules.zone
    first = window_start.astimezone(zone).date() - timedelta(days=1)  # overnight ranges from the day before
    last = window_end.astimezone(zone).date()
    before = timedelta(minutes=rules.buffer_before)
    after = timedelta(minutes=rules.buffer_after)
    specs: set[SlotSpec] = set()
    for range_start, range_end in working_ranges(rules, first, last):
        for vt in rules.visit_types:
            length = timedelta(minutes=vt.minutes)
            block = before + length + after
            cursor = range_start
            while cursor + block <= range_end:
                start = cursor + before
                if window_start <= start < window_end:
                    specs.add(SlotSpec(start, start + length, vt))
                cursor += block
    return sorted(specs, key=lambda s: (s.start, s.visit_type.code))


def horizon(rules: Availability, now: datetime) -> tuple[datetime, datetime]:
    """The window slots are kept for: from now to the end of the local day ``horizon_days`` ahead."""
    zone = rules.zone
    last_day = now.astimezone(zone).date() + timedelta(days=rules.horizon_days)
    end = wall_to_utc(last_day + timedelta(days=1), time(0, 0), zone)
    return now.astimezone(UTC), end
