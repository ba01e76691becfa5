"""French dates, times and durations for every message, page and command, written through Babel."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo

from babel.dates import format_date, format_time, format_timedelta, get_day_names

LOCALE = "fr_FR"


def day(value: date, *, weekday: bool = True) -> str:
    """Return « jeudi 1er octobre 2026 » (« 1er octobre 2026 » without the weekday): the first is « 1er »."""
    text = format_date(value, "EEEE d MMMM y" if weekday else "d MMMM y", locale=LOCALE)
    if not weekday:
        return text.replace("1 ", "1er ", 1) if value.day == 1 else text
    return text.replace(" 1 ", " 1er ", 1) if value.day == 1 else text


def clock(value: time | datetime) -> str:
    """Return « 7 h 05 », the time as French letters and signs put it."""
    return format_time(value, "H' h 'mm", locale=LOCALE)


def moment(value: datetime, tz: tzinfo, *, weekday: bool = True) -> str:
    """Return « jeudi 12 novembre 2026 à 10 h 00 » for an aware instant, seen in ``tz``."""
    local = value.astimezone(tz)
    return f"{day(local.date(), weekday=weekday)} à {clock(local)}"


def short_date(value: date) -> str:
    """Return « 01/10/2026 »."""
    return format_date(value, "short", locale=LOCALE)


def short_moment(value: datetime, tz: tzinfo) -> str:
    """Return « 01/10/2026 10:00 » for an aware instant, seen in ``tz``: for tables."""
    local = value.astimezone(tz)
    return f"{short_date(local.date())} {format_time(local, 'HH:mm', locale=LOCALE)}"


def duration(value: timedelta) -> str:
    """Return « 1 heure », « 2 heures » or « 90 minutes »: whole hours in hours, else minutes."""
    if value.total_seconds() % 3600 == 0:
        text = format_timedelta(value, locale=LOCALE)
    else:
        text = format_timedelta(value, granularity="minute", threshold=1_000_000, locale=LOCALE)
    # CLDR puts a no-break space in hours but not in minutes: one plain space for both (SMS-safe).
    return text.replace("\u00a0", " ")


def weekday(isoweekday: int) -> str:
    """Return « lundi » for 1 … « dimanche » for 7."""
    return str(get_day_names("wide", locale=LOCALE)[isoweekday - 1])


def number(value: float, *, digits: int = 1) -> str:
    """Return « 12 960 » or « 2,5 »: a French number with at most ``digits`` decimals."""
    from babel.numbers import format_decimal

    pattern = "#,##0" + ("." + "#" * digits if digits else "")
    # CLDR groups with a narrow no-break space: a plain no-break space reads the same everywhere.
    return format_decimal(round(value, digits), format=pattern, locale=LOCALE).replace(
        "\u202f", "\u00a0"
    )
