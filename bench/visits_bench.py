"""Visit booking benchmark: 1,000 then 2,000 companies booked one after another across 3 staff members.

    python bench/visits_bench.py [--companies 1000] [--staff 3] [--horizon-days 730]

Books ``--companies`` then twice as many visits in a fresh diary each, unattended (the earliest
free slot each time), and prints both times, bookings per second and their ratio (goal <= 2.5x:
no quadratic blow-up). With the default hours (9:00-12:30, 13:30-17:30) and a 2.5 h reserved
block, one person makes 2 visits a day: 2,000 visits for 3 people take about 16 months, so the
horizon is set explicitly to 2 years. A second pass does what the visits flow does with staff
choice: propose 3 slots, then book the one chosen. Each time is the best of 3 runs; overlaps,
holidays and days off are checked outside the timed part.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synergie.visits.diary import (  # noqa: E402
    Booking,
    Diary,
    StaffAvailability,
    VisitRules,
    french_holidays,
)

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 1, 5, 8, 0, tzinfo=PARIS)  # a Monday morning
REPEATS = 3


def make_staff(count: int) -> list[StaffAvailability]:
    """Staff with the default hours and a few days off each, so the search has holes to skip."""
    return [
        StaffAvailability(
            staff_id=index,
            name=f"Chargée de mission {index + 1}",
            days_off=frozenset(
                NOW.date() + timedelta(days=offset) for offset in range(30 + 7 * index, 400, 61)
            ),
        )
        for index in range(count)
    ]


def book_unattended(
    companies: int, staff: list[StaffAvailability], rules: VisitRules
) -> tuple[float, Diary]:
    """Book the earliest slot for each company in turn; return the seconds taken and the diary."""
    diary = Diary(staff=staff, rules=rules)
    started = time.perf_counter()
    for company_id in range(companies):
        diary.book_earliest(now=NOW, company_id=company_id)
    return time.perf_counter() - started, diary


def book_by_choice(
    companies: int, staff: list[StaffAvailability], rules: VisitRules
) -> tuple[float, Diary]:
    """Propose 3 slots to each company and book the last one offered, as staff might choose."""
    diary = Diary(staff=staff, rules=rules)
    started = time.perf_counter()
    for company_id in range(companies):
        proposed = diary.propose(now=NOW, count=3)
        diary.book(proposed[-1], now=NOW, company_id=company_id)
    return time.perf_counter() - started, diary


def check_no_overlap(diary: Diary, staff: list[StaffAvailability], expected: int) -> Booking:
    """Assert every visit was booked, none overlaps, none on a holiday or day off; return the last."""
    assert len(diary) == expected, (len(diary), expected)
    last = diary.bookings()[-1]
    public_holidays = french_holidays(range(NOW.year, last.visit_start.year + 1))
    for member in staff:
        bookings = diary.bookings(member.staff_id)
        for before, after in zip(bookings, bookings[1:], strict=False):
            assert before.reserved_end <= after.reserved_start, (before, after)
        for booking in bookings:
            day = booking.reserved_start.astimezone(PARIS).date()
            assert day.weekday() < 5 and day not in public_holidays and day not in member.days_off
    return last


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--companies", type=int, default=1000)
    parser.add_argument("--staff", type=int, default=3)
    parser.add_argument("--horizon-days", type=int, default=730)
    args = parser.parse_args()
    rules = VisitRules(
        travel_buffer=timedelta(minutes=30), horizon=timedelta(days=args.horizon_days)
    )
    staff = make_staff(args.staff)
    print(
        f"{args.staff} staff, default hours, {rules.travel_buffer // timedelta(minutes=1)} min "
        f"travel buffer, "
        f"{rules.notice_working_days} working days' notice, horizon {rules.horizon.days} days "
        f"from {NOW:%Y-%m-%d %H:%M %Z}; best of {REPEATS} runs"
    )
    for label, run in (("unattended (book_earliest)", book_unattended),
                       ("staff choice (propose 3 + book)", book_by_choice)):  # fmt: skip
        print(f"{label}:")
        seconds = {}
        for companies in (args.companies, 2 * args.companies):
            # Best of a few runs: each takes well under a second, so one run is mostly noise.
            runs = [run(companies, staff, rules) for _ in range(REPEATS)]
            seconds[companies], diary = min(runs, key=lambda result: result[0])
            last = check_no_overlap(diary, staff, companies)
            print(
                f"  {companies:>6,} companies: {seconds[companies]:6.3f} s  "
                f"{companies / seconds[companies]:>9,.0f} bookings/s  "
                f"last visit {last.visit_start.astimezone(PARIS):%Y-%m-%d %H:%M}"
            )
        ratio = seconds[2 * args.companies] / seconds[args.companies]
        print(f"  ratio time({2 * args.companies:,}) / time({args.companies:,}): {ratio:.2f}x "
              f"(goal <= 2.5x)")  # fmt: skip


if __name__ == "__main__":
    main()
