"""French dates, times and durations, one way, through Babel."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from synergie import french

PARIS = ZoneInfo("Europe/Paris")


def test_the_first_of_the_month_is_written_1er() -> None:
    assert french.day(date(2026, 10, 1)) == "jeudi 1er octobre 2026"
    assert french.day(date(2026, 10, 1), weekday=False) == "1er octobre 2026"
    assert french.day(date(2026, 10, 11)) == "dimanche 11 octobre 2026"
    assert french.day(date(2026, 10, 21), weekday=False) == "21 octobre 2026"


def test_an_instant_is_shown_in_paris_time_across_daylight_saving() -> None:
    # 29 March 2026: Paris moves from UTC+1 to UTC+2 at 01:00 UTC.
    assert french.moment(datetime(2026, 3, 29, 0, 30, tzinfo=UTC), PARIS) == (
        "dimanche 29 mars 2026 à 1 h 30"
    )
    assert french.moment(datetime(2026, 3, 29, 8, 0, tzinfo=UTC), PARIS) == (
        "dimanche 29 mars 2026 à 10 h 00"
    )
    assert french.short_moment(datetime(2026, 11, 2, 9, 5, tzinfo=UTC), PARIS) == "02/11/2026 10:05"
    assert french.clock(time(7, 5)) == "7 h 05"


def test_durations_in_hours_when_whole_else_in_minutes() -> None:
    nbsp = " "  # CLDR mixes no-break and plain spaces: one plain space
    assert french.duration(timedelta(hours=1)) == f"1{nbsp}heure"
    assert french.duration(timedelta(hours=10)) == f"10{nbsp}heures"
    assert french.duration(timedelta(minutes=90)) == f"90{nbsp}minutes"
    assert french.duration(timedelta(minutes=15)) == f"15{nbsp}minutes"


def test_weekday_names() -> None:
    assert [french.weekday(n) for n in (1, 7)] == ["lundi", "dimanche"]
