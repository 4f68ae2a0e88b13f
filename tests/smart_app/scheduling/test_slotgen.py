"""Pure slot generation: weekly hours in the provider's zone, buffers, blackouts, DST changes."""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from smart_app.scheduling.availability import (
    Availability,
    VisitType,
    WeeklyHours,
    format_hours,
    parse_dates,
    parse_hours,
    parse_visit_types,
)
from smart_app.scheduling.errors import InvalidInput
from smart_app.scheduling.slotgen import generate, horizon, wall_to_utc

VIDEO30 = VisitType("video-30", "Video visit", 30, "video")
NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")


def rules(tz: str = "America/New_York", hours: str = "mon 09:00-12:00", **kw: object) -> Availability:
    kw.setdefault("visit_types", (VIDEO30,))
    return Availability(timezone=tz, hours=parse_hours(hours), **kw)  # type: ignore[arg-type]


def day_slots(r: Availability, day: date, zone: ZoneInfo) -> list[tuple[str, str]]:
    start = datetime.combine(day, time(0), tzinfo=zone)
    specs = generate(r, start, start + timedelta(days=1))
    return [(s.start.astimezone(zone).strftime("%H:%M"), s.end.astimezone(zone).strftime("%H:%M")) for s in specs]


def test_weekly_hours_in_provider_zone_become_utc_instants() -> None:
    r = rules(hours="mon 09:00-10:00")
    specs = generate(r, datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC))
    assert [(s.start.isoformat(), s.end.isoformat()) for s in specs] == [
        ("2026-11-23T14:00:00+00:00", "2026-11-23T14:30:00+00:00"),
        ("2026-11-23T14:30:00+00:00", "2026-11-23T15:00:00+00:00")]


def test_same_wall_hours_in_summer_and_winter_shift_in_utc() -> None:
    r = rules(hours="mon 09:00-09:30")
    summer = generate(r, datetime(2026, 7, 6, tzinfo=UTC), datetime(2026, 7, 7, tzinfo=UTC))
    winter = generate(r, datetime(2026, 12, 7, tzinfo=UTC), datetime(2026, 12, 8, tzinfo=UTC))
    assert summer[0].start.hour == 13 and winter[0].start.hour == 14


def test_new_york_spring_forward_night_has_one_hour_less() -> None:
    # 2026-03-08: 02:00 EST jumps to 03:00 EDT. Hours 00:00-04:00 last three real hours.
    r = rules(hours="sun 00:00-04:00", visit_types=(VisitType("v60", "Video", 60, "video"),))
    assert day_slots(r, date(2026, 3, 8), NY) == [("00:00", "01:00"), ("01:00", "03:00"), ("03:00", "04:00")]
    specs = generate(r, datetime(2026, 3, 8, tzinfo=UTC), datetime(2026, 3, 9, 12, tzinfo=UTC))
    assert all(s.end - s.start == timedelta(hours=1) for s in specs)  # real durations stay 60 minutes


def test_new_york_wall_time_in_the_gap_moves_to_the_end_of_the_gap() -> None:
    assert wall_to_utc(date(2026, 3, 8), time(2, 30), NY) == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT
    r = rules(hours="sun 02:30-04:00")
    assert day_slots(r, date(2026, 3, 8), NY) == [("03:00", "03:30"), ("03:30", "04:00")]


def test_new_york_fall_back_night_has_one_hour_more() -> None:
    # 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:xx happens twice.
    r = rules(hours="sun 00:00-03:00", visit_types=(VisitType("v60", "Video", 60, "video"),))
    start = datetime.combine(date(2026, 11, 1), time(0), tzinfo=NY)
    specs = generate(r, start, start + timedelta(days=1))
    assert len(specs) == 4  # four real hours between 00:00 EDT and 03:00 EST
    assert [s.start.astimezone(NY).strftime("%H:%M %Z") for s in specs] == [
        "00:00 EDT", "01:00 EDT", "01:00 EST", "02:00 EST"]
    assert len({s.start for s in specs}) == 4  # no two slots share an instant


def test_ambiguous_wall_time_means_first_occurrence() -> None:
    assert wall_to_utc(date(2026, 11, 1), time(1, 30), NY) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # EDT


def test_london_spring_forward_and_fall_back() -> None:
    # BST starts 2026-03-29 01:00 GMT, ends 2026-10-25 02:00 BST.
    r = rules(tz="Europe/London", hours="sun 00:00-03:00", visit_types=(VisitType("v60", "Video", 60, "video"),))
    assert len(day_slots(r, date(2026, 3, 29), LONDON)) == 2
    start = datetime.combine(date(2026, 10, 25), time(0), tzinfo=LONDON)
    assert len(generate(r, start, start + timedelta(days=1))) == 4
    # Daytime hours on the change days are unaffected in wall time
    r2 = rules(tz="Europe/London", hours="sun 09:00-10:00")
    assert day_slots(r2, date(2026, 3, 29), LONDON) == [("09:00", "09:30"), ("09:30", "10:00")]


def test_daytime_slots_keep_wall_time_across_the_dst_change() -> None:
    r = rules(hours="fri 09:00-10:00\nmon 09:00-10:00")
    before = generate(r, datetime(2026, 3, 6, tzinfo=UTC), datetime(2026, 3, 7, tzinfo=UTC))
    after = generate(r, datetime(2026, 3, 9, tzinfo=UTC), datetime(2026, 3, 10, tzinfo=UTC))
    assert [s.start.astimezone(NY).hour for s in before + after] == [9, 9, 9, 9]
    assert before[0].start.hour == 14 and after[0].start.hour == 13


@pytest.mark.parametrize(("tz", "utc_hour"), [("Asia/Kolkata", 3), ("Australia/Lord_Howe", 22),
                                              ("Pacific/Honolulu", 19), ("America/St_Johns", 12)])
def test_other_zones_including_half_hour_offsets(tz: str, utc_hour: int) -> None:
    r = rules(tz=tz, hours="mon 09:00-09:30")
    zone = ZoneInfo(tz)
    start = datetime.combine(date(2026, 11, 23), time(0), tzinfo=zone)
    (spec,) = generate(r, start, start + timedelta(days=1))
    assert spec.start.astimezone(zone).strftime("%H:%M") == "09:00"
    assert spec.start.astimezone(UTC).hour == utc_hour


def test_overnight_range_runs_past_midnight() -> None:
    r = rules(hours="mon 23:00-01:00", visit_types=(VisitType("v60", "Video", 60, "video"),))
    start = datetime.combine(date(2026, 11, 23), time(0), tzinfo=NY)
    specs = generate(r, start, start + timedelta(days=2))
    assert [s.start.astimezone(NY).strftime("%a %H:%M") for s in specs] == ["Mon 23:00", "Tue 00:00"]


def test_buffers_space_the_slots() -> None:
    r = rules(hours="mon 09:00-11:00", buffer_before=5, buffer_after=10)
    assert day_slots(r, date(2026, 11, 23), NY) == [("09:05", "09:35"), ("09:50", "10:20")]


def test_blackout_dates_are_skipped() -> None:
    r = rules(hours="mon 09:00-10:00", blackouts=(date(2026, 11, 30),))
    start = datetime(2026, 11, 23, tzinfo=UTC)
    specs = generate(r, start, start + timedelta(days=15))
    assert {s.start.astimezone(NY).date() for s in specs} == {date(2026, 11, 23), date(2026, 12, 7)}


def test_each_visit_type_is_its_own_series() -> None:
    r = rules(hours="mon 09:00-10:00", visit_types=(VIDEO30, VisitType("phone-60", "Phone", 60, "phone")))
    specs = generate(r, datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC))
    assert sorted((s.visit_type.code, s.start.astimezone(NY).strftime("%H:%M")) for s in specs) == [
        ("phone-60", "09:00"), ("video-30", "09:00"), ("video-30", "09:30")]


def test_window_is_half_open_and_horizon_ends_at_local_midnight() -> None:
    r = rules(hours="mon 09:00-10:00", horizon_days=7)
    first = generate(r, datetime(2026, 11, 23, 14, 30, tzinfo=UTC), datetime(2026, 11, 23, 15, tzinfo=UTC))
    assert [s.start.hour for s in first] == [14]
    _, end = horizon(r, datetime(2026, 11, 23, 12, tzinfo=UTC))
    assert end.astimezone(NY).replace(tzinfo=None) == datetime(2026, 12, 1, 0, 0)


def test_rules_round_trip_json_and_text_forms() -> None:
    r = rules(hours="mon 09:00-12:00\nwed 13:00-17:30", buffer_after=5, blackouts=(date(2026, 12, 25),))
    assert Availability.from_json(r.to_json()) == r
    assert parse_hours(format_hours(r.hours)) == r.hours
    assert parse_visit_types("new | New patient | 45 | Video\nfu | Follow-up | 15 | phone")[0] == VisitType(
        "new", "New patient", 45, "video")
    assert parse_dates("2026-12-25\n2026-12-24\n") == (date(2026, 12, 24), date(2026, 12, 25))
    assert WeeklyHours(0, time(9), time(12)) in r.hours


@pytest.mark.parametrize(("kw", "field"), [
    ({"tz": "Mars/Olympus"}, "timezone"),
    ({"visit_types": ()}, "visit_types"),
    ({"visit_types": (VisitType("Bad Code", "x", 30, "video"),)}, "visit_types"),
    ({"visit_types": (VisitType("x", "x", 2, "video"),)}, "visit_types"),
    ({"visit_types": (VisitType("x", "x", 30, "fax"),)}, "visit_types"),  # type: ignore[arg-type]
    ({"buffer_after": 500}, "buffers"),
    ({"horizon_days": 0}, "horizon_days"),
])
def test_bad_rules_are_refused_naming_the_field(kw: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        rules(**kw)  # type: ignore[arg-type]
    assert err.value.field == field


def test_bad_text_lines_are_refused() -> None:
    with pytest.raises(InvalidInput, match="line 2"):
        parse_hours("mon 09:00-10:00\nfunday 9-5")
    with pytest.raises(InvalidInput, match="modality"):
        parse_visit_types("a | A | 30 | carrier-pigeon")
