"""Visit slot booking: worked examples, then property tests against an independent brute-force search."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from synergie.visits.diary import (
    Booking,
    BookingConflict,
    Diary,
    NoSlotAvailable,
    Slot,
    StaffAvailability,
    VisitRules,
    WorkWindow,
    book,
    book_earliest,
    check_booking,
    french_holidays,
    propose_slots,
)

PARIS = ZoneInfo("Europe/Paris")
HOUR = timedelta(hours=1)
RULES = VisitRules()  # 1 h preparation, 1 h visit, 30 min travel, 30 min grid, 2 working days
THURSDAY = datetime(2026, 3, 5, 10, 0, tzinfo=PARIS)  # notice of 2 working days -> Monday 9 March


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


def alice(**fields: object) -> StaffAvailability:
    return StaffAvailability(staff_id="alice", name="Alice", **fields)  # type: ignore[arg-type]


def visits(slots: Sequence[Slot | Booking]) -> list[datetime]:
    """The visit starts, in Paris wall-clock time, naive, for readable comparisons."""
    return [slot.visit_start.astimezone(PARIS).replace(tzinfo=None) for slot in slots]


def hand_picked(
    visit_start: datetime, staff_id: str = "alice", rules: VisitRules = RULES
) -> Booking:
    visit_end = visit_start + rules.visit
    return Booking(
        staff_id=staff_id,
        reserved_start=visit_start - rules.preparation,
        reserved_end=visit_end + rules.travel_buffer,
        visit_start=visit_start,
        visit_end=visit_end,
    )


# --- Worked examples -------------------------------------------------------------------------


def test_a_monday_morning_slot_reserves_preparation_visit_and_travel_in_utc() -> None:
    slots = propose_slots(staff=[alice()], bookings=[], rules=RULES, now=THURSDAY)

    assert visits(slots) == [datetime(2026, 3, 9, 10, 0), datetime(2026, 3, 9, 10, 30),
                             datetime(2026, 3, 9, 11, 0)]  # fmt: skip
    first = slots[0]
    assert first.staff_id == "alice"
    # March 9 is in winter time: Paris is UTC+1.
    assert first.reserved_start == datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
    assert first.visit_start == datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
    assert first.visit_end == datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
    assert first.reserved_end == datetime(2026, 3, 9, 10, 30, tzinfo=UTC)
    assert all(slot.visit_start.tzinfo is UTC for slot in slots)
    # The last one ends its travel buffer exactly when the morning ends (12:30).
    assert slots[-1].reserved_end.astimezone(PARIS) == paris(2026, 3, 9, 12, 30)


def test_the_lunch_break_is_respected() -> None:
    diary = Diary(staff=[alice()], rules=RULES)
    morning = diary.book_earliest(now=THURSDAY)

    assert visits([morning]) == [datetime(2026, 3, 9, 10, 0)]
    # Free from 11:30, but 11:30 + 2 h 30 would run into lunch: the afternoon starts at 13:30.
    assert visits(diary.propose(now=THURSDAY, count=5)) == [
        datetime(2026, 3, 9, 14, 30), datetime(2026, 3, 9, 15, 0), datetime(2026, 3, 9, 15, 30),
        datetime(2026, 3, 9, 16, 0), datetime(2026, 3, 10, 10, 0),
    ]  # fmt: skip


def test_a_visit_hour_straddling_lunch_is_never_proposed_even_without_travel() -> None:
    rules = VisitRules(travel_buffer=timedelta(0))
    slots = propose_slots(
        staff=[alice()], bookings=[], rules=rules, now=THURSDAY, not_before=paris(2026, 3, 9, 11)
    )

    assert visits(slots)[0] == datetime(2026, 3, 9, 14, 30)


@pytest.mark.parametrize(
    ("holiday", "next_working_day"),
    [
        (date(2026, 7, 14), date(2026, 7, 15)),  # Fête nationale, a Tuesday
        (date(2026, 11, 11), date(2026, 11, 12)),  # Armistice, a Wednesday
        (date(2026, 5, 14), date(2026, 5, 15)),  # Ascension, a Thursday
        (date(2026, 5, 25), date(2026, 5, 26)),  # Lundi de Pentecôte
    ],
)
def test_public_holidays_are_never_proposed(holiday: date, next_working_day: date) -> None:
    assert holiday in french_holidays([2026])
    now = datetime.combine(holiday - timedelta(days=10), time(8), tzinfo=PARIS)
    not_before = datetime.combine(holiday, time(0), tzinfo=PARIS)

    slots = propose_slots(
        staff=[alice(), StaffAvailability("bob")], bookings=[], rules=RULES, now=now,
        not_before=not_before, count=6,
    )  # fmt: skip

    assert slots
    assert {slot.visit_start.astimezone(PARIS).date() for slot in slots} == {next_working_day}


def test_a_week_of_bookings_skips_the_14th_of_july() -> None:
    diary = Diary(staff=[alice()], rules=RULES)
    booked = [diary.book_earliest(now=paris(2026, 7, 8, 8)) for _ in range(8)]

    days = [visit.date() for visit in visits(booked)]
    assert date(2026, 7, 14) not in days
    assert (
        days
        == [date(2026, 7, 10)] * 2
        + [date(2026, 7, 13)] * 2
        + [date(2026, 7, 15)] * 2
        + [date(2026, 7, 16)] * 2
    )


def test_french_holidays_are_metropolitan_and_a_fresh_set_each_time() -> None:
    days = french_holidays([2026, 2027])

    assert {date(2026, 5, 14), date(2026, 5, 25), date(2027, 5, 6), date(2027, 5, 17)} <= days
    # Alsace-Moselle's Good Friday and 26 December are not metropolitan holidays...
    assert date(2026, 4, 3) not in days and date(2026, 12, 26) not in days
    # ...but are there for staff working in Moselle.
    assert {date(2026, 4, 3), date(2026, 12, 26)} <= french_holidays([2026], subdivision="57")
    days.add(date(2026, 3, 9))
    assert date(2026, 3, 9) not in french_holidays([2026])


def test_a_holiday_in_moselle_is_a_working_day_elsewhere() -> None:
    now = paris(2026, 3, 25, 8)
    not_before = paris(2026, 4, 3)  # Good Friday
    moselle = StaffAvailability("metz", holiday_subdivision="57")

    assert visits(propose_slots(staff=[moselle], bookings=[], rules=RULES, now=now,
                                not_before=not_before, count=1)) == [datetime(2026, 4, 7, 10)]  # fmt: skip
    assert visits(propose_slots(staff=[alice()], bookings=[], rules=RULES, now=now,
                                not_before=not_before, count=1)) == [datetime(2026, 4, 3, 10)]  # fmt: skip


def test_weekends_are_skipped() -> None:
    diary = Diary(staff=[alice()], rules=VisitRules(notice_working_days=1))
    booked = [diary.book_earliest(now=THURSDAY) for _ in range(3)]

    assert visits(booked) == [datetime(2026, 3, 6, 10), datetime(2026, 3, 6, 14, 30),
                              datetime(2026, 3, 9, 10)]  # fmt: skip


def test_a_day_off_is_skipped_and_a_colleague_takes_the_slot() -> None:
    off_monday = alice(days_off=frozenset({date(2026, 3, 9)}))
    bob = StaffAvailability("bob", "Bob")

    alone = propose_slots(staff=[off_monday], bookings=[], rules=RULES, now=THURSDAY, count=1)
    together = book_earliest(staff=[off_monday, bob], bookings=[], rules=RULES, now=THURSDAY)

    assert visits(alone) == [datetime(2026, 3, 10, 10)]
    assert together.staff_id == "bob" and visits([together]) == [datetime(2026, 3, 9, 10)]


@pytest.mark.parametrize(
    ("now", "notice", "first_visit"),
    [
        (paris(2026, 3, 9, 10), 2, datetime(2026, 3, 11, 10)),  # Monday -> Wednesday
        (paris(2026, 3, 6, 16), 2, datetime(2026, 3, 10, 10)),  # Friday -> Tuesday
        (paris(2026, 5, 13, 9), 2, datetime(2026, 5, 18, 10)),  # Ascension does not count
        (paris(2026, 3, 9, 9, 10), 0, datetime(2026, 3, 9, 10, 30)),  # no notice: not in the past
        (paris(2026, 3, 9, 17), 0, datetime(2026, 3, 10, 10)),  # too late for today
    ],
)
def test_the_notice_period_counts_working_days(
    now: datetime, notice: int, first_visit: datetime
) -> None:
    rules = VisitRules(notice_working_days=notice)

    slots = propose_slots(staff=[alice()], bookings=[], rules=rules, now=now, count=1)

    assert visits(slots) == [first_visit]


@pytest.mark.parametrize(
    ("day", "utc_hour"),
    [
        (date(2026, 3, 27), 8),  # Friday before the change: UTC+1
        (date(2026, 3, 30), 7),  # Monday after: UTC+2
        (date(2026, 10, 23), 7),  # Friday before going back: UTC+2
        (date(2026, 10, 26), 8),  # Monday after: UTC+1
    ],
)
def test_a_nine_o_clock_visit_has_the_right_utc_instant_around_dst_changes(
    day: date, utc_hour: int
) -> None:
    early = alice(weekly_hours={weekday: [WorkWindow(time(8), time(12))] for weekday in range(5)})
    rules = VisitRules(notice_working_days=0)

    (slot,) = propose_slots(
        staff=[early], bookings=[], rules=rules, now=datetime.combine(day - timedelta(days=20), time(8), tzinfo=PARIS),
        not_before=datetime.combine(day, time(0), tzinfo=PARIS), count=1,
    )  # fmt: skip

    assert slot.visit_start == datetime.combine(day, time(utc_hour), tzinfo=UTC)
    assert slot.visit_start.astimezone(PARIS).time() == time(9)
    assert slot.reserved_start.astimezone(PARIS).time() == time(8)
    assert slot.reserved_end - slot.reserved_start == timedelta(hours=2, minutes=30)


def test_an_overlapping_hand_picked_slot_is_refused_and_nothing_is_recorded() -> None:
    diary = Diary(staff=[alice()], rules=RULES)
    taken = diary.book_earliest(now=THURSDAY, company_id=1)  # Monday 10:00, reserved 9:00-11:30
    clash = hand_picked(taken.visit_start + timedelta(minutes=30))

    with pytest.raises(BookingConflict, match="chevauche une visite déjà réservée pour Alice"):
        check_booking(clash, diary.staff[0], RULES, diary.bookings(), now=THURSDAY)
    with pytest.raises(BookingConflict, match="chevauche"):
        diary.book(clash.slot, now=THURSDAY, company_id=2)
    assert diary.bookings() == [taken]


def test_a_preparation_may_start_when_the_previous_travel_buffer_ends() -> None:
    long_days = alice(weekly_hours={0: [WorkWindow(time(8), time(18))]})
    diary = Diary(staff=[long_days], rules=RULES)
    taken = diary.book_earliest(now=THURSDAY)  # Monday 9:00, reserved 8:00-10:30
    touching = hand_picked(taken.reserved_end + RULES.preparation)

    check_booking(touching, long_days, RULES, diary.bookings(), now=THURSDAY)
    with pytest.raises(BookingConflict, match="chevauche"):
        check_booking(
            hand_picked(touching.visit_start - timedelta(minutes=5)), long_days, RULES,
            diary.bookings(), now=THURSDAY,
        )  # fmt: skip
    assert diary.book_earliest(now=THURSDAY).slot == touching.slot


def test_two_proposals_from_one_list_cannot_both_be_booked() -> None:
    diary = Diary(staff=[alice()], rules=RULES)
    first, second, _ = diary.propose(now=THURSDAY)

    diary.book(first, now=THURSDAY)
    with pytest.raises(BookingConflict, match="chevauche"):
        diary.book(second, now=THURSDAY)


@pytest.mark.parametrize(
    ("visit_start", "staff", "reason"),
    [
        (paris(2026, 3, 9, 12), alice(), "sort des horaires"),  # over lunch
        (paris(2026, 3, 9, 16, 30), alice(), "sort des horaires"),  # travel after 17:30
        (paris(2026, 3, 9, 9, 30), alice(), "sort des horaires"),  # preparation before 9:00
        (paris(2026, 7, 14, 10), alice(), r"férié \(Fête nationale\)"),
        (paris(2026, 3, 14, 10), alice(), "week-end"),
        (paris(2026, 3, 9, 10), alice(days_off=frozenset({date(2026, 3, 9)})), "ne travaille pas"),
        (paris(2026, 3, 6, 10), alice(), "trop proche"),  # Friday: notice runs to Monday
    ],
)
def test_a_hand_picked_slot_breaking_a_rule_is_refused_with_a_french_reason(
    visit_start: datetime, staff: StaffAvailability, reason: str
) -> None:
    with pytest.raises(BookingConflict, match=reason):
        check_booking(hand_picked(visit_start), staff, RULES, [], now=THURSDAY)


def test_a_hand_picked_slot_off_the_grid_is_accepted_but_wrong_durations_are_not() -> None:
    check_booking(hand_picked(paris(2026, 3, 9, 10, 15)), alice(), RULES, [], now=THURSDAY)
    short = hand_picked(paris(2026, 3, 9, 10), rules=VisitRules(travel_buffer=timedelta(0)))

    with pytest.raises(BookingConflict, match="durées prévues"):
        check_booking(short, alice(), RULES, [], now=THURSDAY)
    with pytest.raises(BookingConflict, match="inconnu"):
        book(hand_picked(paris(2026, 3, 9, 10), "carol").slot, staff=[alice()], bookings=[],
             rules=RULES, now=THURSDAY)  # fmt: skip


def test_a_full_horizon_raises_no_slot_available() -> None:
    # From Monday 8:00 with 7 days and no notice: Monday to Friday, two visits a day.
    rules = VisitRules(notice_working_days=0, horizon=timedelta(days=7))
    diary = Diary(staff=[alice()], rules=rules)
    now = paris(2026, 3, 9, 8)
    booked = [diary.book_earliest(now=now) for _ in range(10)]

    assert visits(booked)[-1] == datetime(2026, 3, 13, 14, 30)
    assert diary.propose(now=now) == []
    with pytest.raises(NoSlotAvailable, match="Aucun créneau de visite libre"):
        diary.book_earliest(now=now)


def test_cancelling_frees_the_slot_for_the_next_booking() -> None:
    diary = Diary(staff=[alice()], rules=RULES)
    first, second, third = (diary.book_earliest(now=THURSDAY, company_id=n) for n in range(3))

    diary.cancel(first)

    assert diary.bookings() == [second, third]
    assert diary.book_earliest(now=THURSDAY, company_id=9).slot == first.slot
    with pytest.raises(KeyError):
        diary.cancel(first)


def test_proposals_offer_distinct_times_unless_asked_for_every_staff_member() -> None:
    staff = [StaffAvailability(name) for name in ("a", "b", "c")]
    diary = Diary(staff=staff, rules=RULES)

    distinct = diary.propose(now=THURSDAY)
    every = diary.propose(now=THURSDAY, one_per_time=False)

    assert [(s.staff_id, t.time()) for s, t in zip(distinct, visits(distinct), strict=True)] == [
        ("a", time(10)), ("a", time(10, 30)), ("a", time(11)),
    ]  # fmt: skip
    assert [(s.staff_id, t.time()) for s, t in zip(every, visits(every), strict=True)] == [
        ("a", time(10)), ("b", time(10)), ("c", time(10)),
    ]  # fmt: skip


def test_existing_bookings_are_respected_and_the_functions_agree_with_the_diary() -> None:
    staff = [alice(), StaffAvailability("bob")]
    existing = [hand_picked(paris(2026, 3, 9, 10)), hand_picked(paris(2026, 3, 9, 10), "bob")]

    slots = propose_slots(staff=staff, bookings=existing, rules=RULES, now=THURSDAY)
    chosen = book(slots[0], staff=staff, bookings=existing, rules=RULES, now=THURSDAY,
                  company_id=42)  # fmt: skip

    assert visits(slots) == [datetime(2026, 3, 9, 14, 30), datetime(2026, 3, 9, 15),
                             datetime(2026, 3, 9, 15, 30)]  # fmt: skip
    assert slots == Diary(staff=staff, rules=RULES, bookings=existing).propose(now=THURSDAY)
    assert chosen.company_id == 42 and chosen.slot == slots[0]


def test_overlapping_bookings_cannot_be_loaded_into_a_diary() -> None:
    one = hand_picked(paris(2026, 3, 9, 10))
    with pytest.raises(BookingConflict, match="chevauche"):
        Diary(staff=[alice()], rules=RULES, bookings=[one, hand_picked(paris(2026, 3, 9, 11))])


def test_configuration_mistakes_are_refused_with_a_french_message() -> None:
    with pytest.raises(ValueError, match="qu'en semaine"):
        alice(weekly_hours={5: [WorkWindow(time(9), time(12))]})
    with pytest.raises(ValueError, match="se chevauchent"):
        alice(weekly_hours={0: [WorkWindow(time(9), time(12)), WorkWindow(time(11), time(14))]})
    with pytest.raises(ValueError, match="finit avant de commencer"):
        alice(weekly_hours={0: [WorkWindow(time(12), time(9))]})
    with pytest.raises(ValueError, match="Fuseau horaire inconnu"):
        alice(timezone="Europe/Nuits")
    with pytest.raises(ValueError, match="Subdivision inconnue"):
        alice(holiday_subdivision="99")
    with pytest.raises(ValueError, match="diviser une journée"):
        VisitRules(granularity=timedelta(minutes=7))
    with pytest.raises(ValueError, match="timezone-aware"):
        propose_slots(staff=[alice()], bookings=[], rules=RULES, now=datetime(2026, 3, 5, 10))


# --- Properties --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calendar:
    """What the test itself knows of one staff member, to check the engine independently."""

    member: StaffAvailability
    hours: Mapping[int, list[tuple[time, time]]]
    days_off: frozenset[date]


def _quarter(index: int) -> time:
    return time(index // 4, index % 4 * 15)


@st.composite
def calendars(draw: st.DrawFn, staff_id: int, today: date) -> Calendar:
    """A staff member with 0-3 random windows per weekday between 6:00 and 20:00, and days off."""
    hours: dict[int, list[tuple[time, time]]] = {}
    for weekday in range(5):
        points = sorted(draw(st.lists(st.integers(6 * 4, 20 * 4), unique=True, max_size=6)))
        hours[weekday] = [
            (_quarter(a), _quarter(b)) for a, b in zip(points[::2], points[1::2], strict=False)
        ]
    offsets = draw(st.sets(st.integers(0, 45), max_size=12))
    days_off = frozenset(today + timedelta(days=offset) for offset in offsets)
    member = StaffAvailability(
        staff_id=staff_id, name=f"Agent {staff_id}", weekly_hours=hours, days_off=days_off
    )
    return Calendar(member, hours, days_off)


NOWS = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31, 23, 59), timezones=st.just(UTC)
)
RULE_SETS = st.builds(
    VisitRules,
    travel_buffer=st.sampled_from([timedelta(minutes=m) for m in (0, 15, 30, 45)]),
    granularity=st.sampled_from([timedelta(minutes=m) for m in (15, 30, 60)]),
    notice_working_days=st.integers(0, 3),
    horizon=st.sampled_from([timedelta(days=d) for d in (21, 45, 90)]),
)


def _public_holiday(day: date) -> bool:
    return day in holidays.France(years=day.year)


def _notice_day(now: datetime, notice: int) -> date:
    """The first day a visit may take place: ``notice`` weekdays that are not holidays, after today."""
    day = now.astimezone(PARIS).date()
    while notice:
        day += timedelta(days=1)
        if day.weekday() < 5 and not _public_holiday(day):
            notice -= 1
    return day


def _lower_bound(now: datetime, rules: VisitRules, not_before: datetime | None) -> datetime:
    bound = now
    if rules.notice_working_days:
        notice = _notice_day(now, rules.notice_working_days)
        bound = max(bound, datetime.combine(notice, time(0), tzinfo=PARIS))
    return bound if not_before is None else max(bound, not_before)


def brute_force_earliest(
    calendars: Sequence[Calendar],
    rules: VisitRules,
    bookings: Sequence[Booking],
    now: datetime,
    not_before: datetime | None,
) -> tuple[datetime, int | str] | None:
    """The earliest (visit start, staff id) found by trying every grid point of every day in turn."""
    lower, limit = _lower_bound(now, rules, not_before), now + rules.horizon
    step = int(rules.granularity.total_seconds() // 60)
    day = lower.astimezone(PARIS).date()
    while datetime.combine(day, time(0), tzinfo=PARIS) < limit:
        found: list[tuple[datetime, int | str]] = []
        if day.weekday() < 5 and not _public_holiday(day):
            for calendar in calendars:
                if day in calendar.days_off:
                    continue
                taken = [b for b in bookings if b.staff_id == calendar.member.staff_id]
                for start, end in calendar.hours.get(day.weekday(), []):
                    opens = datetime.combine(day, start, tzinfo=PARIS)
                    closes = datetime.combine(day, end, tzinfo=PARIS)
                    # Wall-clock arithmetic is exact on weekdays: France changes clocks on Sundays.
                    for minute in range(0, 24 * 60, step):
                        visit = datetime.combine(day, time(0), tzinfo=PARIS) + timedelta(
                            minutes=minute
                        )
                        reserved, reserved_end = visit - rules.preparation, visit + rules.visit
                        reserved_end += rules.travel_buffer
                        if (
                            opens <= reserved
                            and reserved_end <= closes
                            and reserved >= lower
                            and reserved_end <= limit
                            and not any(
                                b.reserved_start < reserved_end and reserved < b.reserved_end
                                for b in taken
                            )
                        ):
                            found.append((visit.astimezone(UTC), calendar.member.staff_id))
                            break
        if found:
            # Same instant for two people: the first in staff order (ids are indexes here).
            return min(found)
        day += timedelta(days=1)
    return None


def assert_valid(
    booking: Booking, calendar: Calendar, rules: VisitRules, booked_at: datetime
) -> None:
    """Check one booking against the rules, computed here without the engine's own helpers."""
    for moment in (
        booking.reserved_start,
        booking.visit_start,
        booking.visit_end,
        booking.reserved_end,
    ):
        assert moment.utcoffset() == timedelta(0)  # stored in UTC
    # The preparation hour sits right before the visit hour, the travel buffer right after.
    assert booking.visit_start - booking.reserved_start == rules.preparation == HOUR
    assert booking.visit_end - booking.visit_start == rules.visit == HOUR
    assert booking.reserved_end - booking.visit_end == rules.travel_buffer
    day = booking.reserved_start.astimezone(PARIS).date()
    assert day.weekday() < 5, booking
    assert not _public_holiday(day), booking
    assert day not in calendar.days_off, booking
    assert any(
        datetime.combine(day, start, tzinfo=PARIS) <= booking.reserved_start
        and booking.reserved_end <= datetime.combine(day, end, tzinfo=PARIS)
        for start, end in calendar.hours.get(day.weekday(), [])
    ), booking
    assert booking.reserved_start >= booked_at
    assert day >= _notice_day(booked_at, rules.notice_working_days)
    assert booking.reserved_end <= booked_at + rules.horizon
    local = booking.visit_start.astimezone(PARIS)
    assert (local.hour * 60 + local.minute) % (rules.granularity.total_seconds() // 60) == 0
    assert local.second == local.microsecond == 0


def assert_no_overlap(bookings: Sequence[Booking]) -> None:
    by_staff: dict[object, list[Booking]] = {}
    for booking in bookings:
        by_staff.setdefault(booking.staff_id, []).append(booking)
    for items in by_staff.values():
        items.sort(key=lambda item: item.reserved_start)
        for before, after in zip(items, items[1:], strict=False):
            assert before.reserved_end <= after.reserved_start, (before, after)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_booked_visits_are_the_earliest_valid_ones_and_never_overlap(data: st.DataObject) -> None:
    now = data.draw(NOWS, label="now")
    rules = data.draw(RULE_SETS, label="rules")
    today = now.astimezone(PARIS).date()
    team = [data.draw(calendars(index, today), label=f"staff {index}") for index in range(data.draw(st.integers(1, 4)))]  # fmt: skip
    staff = [calendar.member for calendar in team]
    by_id = {calendar.member.staff_id: calendar for calendar in team}

    # Bookings made earlier through the engine, then loaded as the flow will load them.
    earlier = now - timedelta(days=data.draw(st.integers(0, 10), label="days earlier"))
    existing: list[Booking] = []
    for _ in range(data.draw(st.integers(0, 6), label="existing")):
        try:
            existing.append(book_earliest(staff=staff, bookings=existing, rules=rules, now=earlier))
        except NoSlotAvailable:
            break
    diary = Diary(staff=staff, rules=rules, bookings=existing)

    booked: list[Booking] = []
    for number in range(data.draw(st.integers(1, 20), label="bookings")):
        not_before = data.draw(
            st.none() | st.integers(0, 20 * 24).map(lambda hours: now + timedelta(hours=hours)),
            label="not before",
        )
        expected = brute_force_earliest(team, rules, existing + booked, now, not_before)
        # Unattended (the earliest slot), or staff picking one of three proposals, which
        # leaves earlier gaps behind that later bookings must still find.
        pick = data.draw(st.sampled_from([None, 0, 1, 2]), label="proposal picked")
        if pick is None:
            try:
                booking = diary.book_earliest(now=now, company_id=number, not_before=not_before)
            except NoSlotAvailable:
                assert expected is None
                continue
            assert (booking.visit_start, booking.staff_id) == expected
        else:
            proposed = diary.propose(now=now, not_before=not_before)
            if not proposed:
                assert expected is None
                continue
            assert (proposed[0].visit_start, proposed[0].staff_id) == expected
            assert len({slot.visit_start for slot in proposed}) == len(proposed)
            booking = diary.book(proposed[min(pick, len(proposed) - 1)], now=now)
        booked.append(booking)

    assert set(diary.bookings()) == set(existing + booked)
    assert [b.reserved_start for b in diary.bookings()] == sorted(
        b.reserved_start for b in diary.bookings()
    )
    assert_no_overlap(existing + booked)
    for booking in existing:
        assert_valid(booking, by_id[booking.staff_id], rules, earlier)
    for booking in booked:
        assert_valid(booking, by_id[booking.staff_id], rules, now)
        others = [other for other in existing + booked if other is not booking]
        check_booking(booking, by_id[booking.staff_id].member, rules, others, now=now)


LONG_DAYS = alice(weekly_hours={day: [WorkWindow(time(7), time(19))] for day in range(5)})


@settings(max_examples=50, deadline=None)
@given(
    count=st.integers(1, 6),
    pick=st.integers(0, 5),
    overlap=st.integers(1, 149).map(lambda minutes: timedelta(minutes=minutes)),
    after=st.booleans(),
    now=NOWS,
)
def test_a_hand_picked_slot_overlapping_any_booking_is_always_refused(
    count: int, pick: int, overlap: timedelta, after: bool, now: datetime
) -> None:
    # Long days for Alice, so that even a 1-minute overlap can be tried inside working hours.
    diary = Diary(staff=[LONG_DAYS, StaffAvailability("bob")], rules=RULES)
    booked = [diary.book_earliest(now=now) for _ in range(count)]
    target = booked[pick % count]
    if after:  # starts before the target's travel buffer ends
        visit_start = target.reserved_end - overlap + RULES.preparation
    else:  # its travel buffer ends after the target's preparation starts
        visit_start = target.reserved_start + overlap - RULES.travel_buffer - RULES.visit
    moved = hand_picked(visit_start, staff_id=str(target.staff_id))
    member = diary.staff[0 if target.staff_id == "alice" else 1]
    # Only slots that would be fine on an empty diary: the overlap is what gets them refused.
    try:
        check_booking(moved, member, RULES, [], now=now)
    except BookingConflict:
        reject()

    with pytest.raises(BookingConflict, match="chevauche"):
        diary.book(moved.slot, now=now)
    with pytest.raises(BookingConflict, match="chevauche"):
        check_booking(moved, member, RULES, diary.bookings(), now=now)
    assert len(diary) == count


@pytest.mark.parametrize("after", [True, False])
@pytest.mark.parametrize("minutes", [1, 30, 149])
def test_an_overlap_of_any_length_at_either_end_is_refused(after: bool, minutes: int) -> None:
    midday = hand_picked(paris(2026, 3, 9, 12))  # reserved 11:00-13:30
    diary = Diary(staff=[LONG_DAYS], rules=RULES, bookings=[midday])
    overlap = timedelta(minutes=minutes)
    if after:
        visit_start = midday.reserved_end - overlap + RULES.preparation
    else:
        visit_start = midday.reserved_start + overlap - RULES.travel_buffer - RULES.visit
    moved = hand_picked(visit_start)
    check_booking(moved, LONG_DAYS, RULES, [], now=THURSDAY)  # fine on its own

    with pytest.raises(BookingConflict, match="chevauche"):
        diary.book(moved.slot, now=THURSDAY)
    with pytest.raises(BookingConflict, match="chevauche"):
        check_booking(moved, LONG_DAYS, RULES, [midday], now=THURSDAY)
