"""Visit slot booking: staff working hours, French public holidays, and a diary that never double-books."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import NamedTuple, TypeAlias
from zoneinfo import ZoneInfo

import holidays

from synergie import french

__all__ = [
    "DEFAULT_WEEKLY_HOURS",
    "Booking",
    "BookingConflict",
    "Diary",
    "NoSlotAvailable",
    "SchedulingError",
    "Slot",
    "StaffAvailability",
    "VisitRules",
    "WorkWindow",
    "book",
    "book_earliest",
    "check_booking",
    "earliest_start",
    "french_holidays",
    "propose_slots",
]

# How a visit is laid out in time (the interpretation this module enforces everywhere):
#
#     reserved_start                                                      reserved_end
#     |-- preparation (1 h, at the office) --|-- visit (1 h, on site) --|-- travel buffer --|
#                                       visit_start                 visit_end
#
# - The preparation hour ends exactly when the visit starts: the officer prepares at the
#   office and leaves straight away. The outbound trip is therefore not reserved on its own:
#   it comes out of the preparation hour. Reserving it would mean a gap between preparation
#   and visit, which the issue rules out ("1 h of preparation before and 1 h on site").
# - The travel buffer follows the visit: the trip back to the office, where the next
#   booking's preparation hour takes place. Consecutive reserved blocks may touch.
# - The whole reserved block (preparation + visit + buffer) must lie inside ONE working
#   window of a working day: the officer is back at the office before lunch or the end of
#   the day, and a block never straddles the lunch break.
# - Hand-picked bookings (check_booking) need not sit on the slot grid, and may lie beyond
#   the horizon: both only shape what the engine proposes.

StaffId: TypeAlias = int | str
CompanyId: TypeAlias = int | str

_DAY = timedelta(days=1)
# The smallest step past a candidate: the next candidate is the next point of the slot grid.
_TICK = timedelta(microseconds=1)


# Exceptions, all with a French message for the programme officer:
#
#   SchedulingError
#   ├── NoSlotAvailable   nothing free within the horizon
#   └── BookingConflict   a chosen slot is invalid (overlap, hours, holiday, day off, too soon)


class SchedulingError(Exception):
    """A visit could not be scheduled; the message says why, in French."""


class NoSlotAvailable(SchedulingError):
    """No free slot exists for any staff member within the booking horizon."""


class BookingConflict(SchedulingError):
    """A chosen slot breaks a rule: overlap, outside hours, weekend, holiday, day off or too soon."""


class WorkWindow(NamedTuple):
    """One stretch of working time in a day, in local wall-clock time."""

    start: time
    end: time


DEFAULT_WEEKLY_HOURS: Mapping[int, tuple[WorkWindow, ...]] = {
    weekday: (WorkWindow(time(9), time(12, 30)), WorkWindow(time(13, 30), time(17, 30)))
    for weekday in range(5)
}


@dataclass(frozen=True)
class StaffAvailability:
    """When one staff member can make visits: windows per weekday (0 = Monday), days off, time zone.

    ``holiday_subdivision`` is passed to the ``holidays`` library: ``None`` (the default) is
    metropolitan France; ``"57"`` (Moselle) or ``"6AE"`` (Alsace) add Good Friday and 26 December.
    """

    staff_id: StaffId
    name: str = ""
    weekly_hours: Mapping[int, Sequence[WorkWindow | tuple[time, time]]] = field(
        default_factory=lambda: dict(DEFAULT_WEEKLY_HOURS)
    )
    days_off: frozenset[date] = frozenset()
    timezone: str = "Europe/Paris"
    holiday_subdivision: str | None = None

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except Exception as exc:  # ZoneInfoNotFoundError or ValueError on odd input
            raise ValueError(
                f"Fuseau horaire inconnu pour {self.label} : {self.timezone!r} "
                "(exemple : Europe/Paris)."
            ) from exc
        if self.holiday_subdivision not in (None, *holidays.France.subdivisions):
            raise ValueError(
                f"Subdivision inconnue pour les jours fériés de {self.label} : "
                f"{self.holiday_subdivision!r} (laissez vide pour la métropole, « 57 » pour la "
                "Moselle, « 6AE » pour l'Alsace)."
            )
        hours: dict[int, tuple[WorkWindow, ...]] = {}
        for weekday, windows in self.weekly_hours.items():
            if weekday not in range(5):
                raise ValueError(
                    f"Horaires de {self.label} : jour {weekday!r} refusé ; les visites n'ont lieu "
                    "qu'en semaine (0 = lundi … 4 = vendredi)."
                )
            ordered = sorted(WorkWindow(*window) for window in windows)
            for window in ordered:
                if window.start.tzinfo is not None or window.end.tzinfo is not None:
                    raise ValueError(
                        f"Horaires de {self.label} : donnez des heures locales sans fuseau."
                    )
                if window.start >= window.end:
                    raise ValueError(
                        f"Horaires de {self.label}, {french.weekday(weekday + 1)} : la plage "
                        f"{french.clock(window.start)}–{french.clock(window.end)} finit avant de commencer."
                    )
            for before, after in zip(ordered, ordered[1:], strict=False):
                if after.start < before.end:
                    raise ValueError(
                        f"Horaires de {self.label}, {french.weekday(weekday + 1)} : les plages "
                        f"{french.clock(before.start)}–{french.clock(before.end)} et "
                        f"{french.clock(after.start)}–{french.clock(after.end)} se chevauchent."
                    )
            hours[weekday] = tuple(ordered)
        object.__setattr__(self, "weekly_hours", hours)
        object.__setattr__(self, "days_off", frozenset(self.days_off))

    @property
    def tz(self) -> ZoneInfo:
        """The staff member's time zone, in which working hours are read."""
        return ZoneInfo(self.timezone)

    @property
    def label(self) -> str:
        """The name shown in messages, falling back to the id."""
        return self.name or str(self.staff_id)

    def windows_on(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """Return the day's working windows as UTC instants; empty on weekends, holidays and days off."""
        if day.weekday() >= 5 or day in self.days_off:
            return ()
        if day in _holiday_names(day.year, self.holiday_subdivision):
            return ()
        tz = self.tz
        # Wall-clock times become instants through the zone, so DST weeks get the right offset.
        return tuple(
            (
                datetime.combine(day, start, tzinfo=tz).astimezone(UTC),
                datetime.combine(day, end, tzinfo=tz).astimezone(UTC),
            )
            for start, end in self.weekly_hours.get(day.weekday(), ())
        )


@dataclass(frozen=True, slots=True)
class VisitRules:
    """How long a visit takes and when it may be booked; the visits flow builds it from settings."""

    preparation: timedelta = timedelta(hours=1)
    visit: timedelta = timedelta(hours=1)
    travel_buffer: timedelta = timedelta(minutes=30)
    granularity: timedelta = timedelta(minutes=30)
    notice_working_days: int = 2
    horizon: timedelta = timedelta(days=90)

    def __post_init__(self) -> None:
        if self.preparation < timedelta(0) or self.travel_buffer < timedelta(0):
            raise ValueError("La préparation et le temps de trajet ne peuvent pas être négatifs.")
        if self.visit <= timedelta(0):
            raise ValueError("La durée d'une visite doit être positive.")
        if self.granularity <= timedelta(0) or _DAY % self.granularity:
            # One grid for every day: the slots of Monday and Tuesday start at the same times.
            raise ValueError(
                "Le pas des créneaux doit diviser une journée (exemples : 15 min, 30 min, 1 h)."
            )
        if self.notice_working_days < 0:
            raise ValueError("Le délai de prévenance ne peut pas être négatif.")
        if self.horizon <= timedelta(0):
            raise ValueError("L'horizon de réservation doit être positif.")

    @property
    def block(self) -> timedelta:
        """The whole reserved time: preparation, visit and travel buffer."""
        return self.preparation + self.visit + self.travel_buffer


@dataclass(frozen=True, slots=True)
class Slot:
    """A free place in one staff member's diary, every instant in UTC."""

    staff_id: StaffId
    visit_start: datetime
    visit_end: datetime
    reserved_start: datetime
    reserved_end: datetime

    def __post_init__(self) -> None:
        _normalise_instants(self)


@dataclass(frozen=True, slots=True)
class Booking:
    """A visit reserved for one staff member: the reserved block and the visit inside it, in UTC."""

    staff_id: StaffId
    reserved_start: datetime
    reserved_end: datetime
    visit_start: datetime
    visit_end: datetime
    company_id: CompanyId | None = None

    def __post_init__(self) -> None:
        _normalise_instants(self)

    @property
    def slot(self) -> Slot:
        """The slot this booking occupies."""
        return Slot(
            self.staff_id, self.visit_start, self.visit_end, self.reserved_start, self.reserved_end
        )


def _normalise_instants(item: Slot | Booking) -> None:
    for name in ("visit_start", "visit_end", "reserved_start", "reserved_end"):
        value: datetime = getattr(item, name)
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{type(item).__name__}.{name} must be timezone-aware")
        object.__setattr__(item, name, value.astimezone(UTC))


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment.astimezone(UTC)


@cache
def _holiday_names(year: int, subdivision: str | None = None) -> Mapping[date, str]:
    """Return the French public holidays of one year with their French names."""
    try:
        found = holidays.France(years=year, subdiv=subdivision, language="fr")
    except NotImplementedError as exc:
        raise ValueError(
            f"Subdivision inconnue pour les jours fériés : {subdivision!r} "
            "(laissez vide pour la métropole, « 57 » pour la Moselle, « 6AE » pour l'Alsace)."
        ) from exc
    return dict(found.items())


def french_holidays(years: Iterable[int], *, subdivision: str | None = None) -> set[date]:
    """Return the French public holidays of the given years (metropolitan, without Alsace-Moselle's by default)."""
    days: set[date] = set()
    for year in years:
        days.update(_holiday_names(year, subdivision))
    return days


def _is_working_day(day: date, subdivision: str | None) -> bool:
    return day.weekday() < 5 and day not in _holiday_names(day.year, subdivision)


def earliest_start(member: StaffAvailability, rules: VisitRules, now: datetime) -> datetime:
    """Return the earliest instant a reserved block may start: the notice-th working day after today."""
    now = _aware(now, "now")
    if rules.notice_working_days == 0:
        return now
    tz = member.tz
    day = now.astimezone(tz).date()
    remaining = rules.notice_working_days
    # Working days for notice are the company's: weekdays that are not public holidays,
    # whatever the staff member's own days off.
    while remaining:
        day += _DAY
        if _is_working_day(day, member.holiday_subdivision):
            remaining -= 1
    return max(now, datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC))


def _align_up(instant: datetime, granularity: timedelta, tz: ZoneInfo) -> datetime:
    """Return the first point of the local wall-clock grid at or after ``instant``."""
    offset = instant.astimezone(tz).utcoffset() or timedelta(0)
    wall = instant.replace(tzinfo=None) + offset
    since_midnight = wall - datetime.combine(wall.date(), time(0))
    remainder = since_midnight % granularity
    return instant if not remainder else instant + (granularity - remainder)


def _french_duration(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h" if not minutes else f"{hours} h {minutes:02d}"


def _check_calendar(
    booking: Booking, member: StaffAvailability, rules: VisitRules, now: datetime
) -> None:
    """Raise BookingConflict unless the booking is well formed, early enough noticed and in working hours."""
    tz = member.tz
    when = french.moment(booking.visit_start, tz)
    if booking.staff_id != member.staff_id:
        raise BookingConflict(
            f"Le créneau du {when} est au nom de {booking.staff_id}, pas de {member.label}."
        )
    if (
        booking.reserved_start != booking.visit_start - rules.preparation
        or booking.visit_end != booking.visit_start + rules.visit
        or booking.reserved_end != booking.visit_end + rules.travel_buffer
    ):
        raise BookingConflict(
            f"Le créneau du {when} ne respecte pas les durées prévues : "
            f"{_french_duration(rules.preparation)} de préparation juste avant "
            f"{_french_duration(rules.visit)} de visite, puis {_french_duration(rules.travel_buffer)} "
            "de trajet."
        )
    earliest = earliest_start(member, rules, now)
    if booking.reserved_start < earliest:
        raise BookingConflict(
            f"Le créneau du {when} (préparation comprise) est trop proche : l'entreprise doit être "
            f"prévenue {rules.notice_working_days} jour(s) ouvré(s) à l'avance, soit au plus tôt "
            f"le {french.moment(earliest, tz)}."
        )
    day = booking.reserved_start.astimezone(tz).date()
    if day.weekday() >= 5:
        raise BookingConflict(
            f"Le {french.day(day)} tombe un week-end : les visites n'ont lieu qu'en semaine."
        )
    holiday = _holiday_names(day.year, member.holiday_subdivision).get(day)
    if holiday is not None:
        raise BookingConflict(
            f"Le {french.day(day)} est férié ({holiday}) : choisissez un autre jour."
        )
    if day in member.days_off:
        raise BookingConflict(
            f"{member.label} ne travaille pas le {french.day(day)} : choisissez un autre jour "
            "ou un autre membre de l'équipe."
        )
    windows = member.windows_on(day)
    if not any(
        start <= booking.reserved_start and booking.reserved_end <= end for start, end in windows
    ):
        hours = ", ".join(
            f"{french.clock(start)}–{french.clock(end)}"
            for start, end in member.weekly_hours.get(day.weekday(), ())
        )
        raise BookingConflict(
            f"Le créneau réservé du {french.day(day)} de {french.clock(booking.reserved_start.astimezone(tz))} "
            f"à {french.clock(booking.reserved_end.astimezone(tz))} (préparation, visite et trajet) sort des "
            f"horaires de {member.label} ce jour-là ({hours or 'aucune plage'}) : tout le créneau doit "
            "tenir dans une même plage de travail."
        )


def _overlap_message(booking: Booking, other: Booking, member: StaffAvailability) -> str:
    tz = member.tz
    return (
        f"Le créneau du {french.moment(booking.visit_start, tz)} chevauche une visite déjà réservée "
        f"pour {member.label} le {french.moment(other.visit_start, tz)} (préparation et trajet "
        "compris) : choisissez un autre créneau."
    )


def check_booking(
    booking: Booking,
    staff: StaffAvailability,
    rules: VisitRules,
    existing: Iterable[Booking],
    *,
    now: datetime,
) -> None:
    """Raise BookingConflict if a hand-picked booking breaks a rule or overlaps an existing one."""
    _check_calendar(booking, staff, rules, now)
    for other in existing:
        if (
            other.staff_id == booking.staff_id
            and other is not booking
            and other.reserved_start < booking.reserved_end
            and booking.reserved_start < other.reserved_end
        ):
            raise BookingConflict(_overlap_message(booking, other, staff))


class Diary:
    """Every staff member's bookings kept sorted, so that finding the next free slot stays cheap.

    Per staff member, reserved starts and ends sit in parallel sorted lists (bookings of one
    person never overlap, so both orders agree) searched with ``bisect``; a cursor remembers
    "no free slot between ``anchor`` and ``free_from``", so booking visits one after another
    resumes where the last search stopped instead of rescanning every earlier booking.
    """

    def __init__(
        self,
        *,
        staff: Sequence[StaffAvailability],
        rules: VisitRules,
        bookings: Iterable[Booking] = (),
    ) -> None:
        self.rules = rules
        self.staff = tuple(staff)
        self._members = {member.staff_id: member for member in self.staff}
        if len(self._members) != len(self.staff):
            raise ValueError("Deux membres de l'équipe portent le même identifiant.")
        self._starts: dict[StaffId, list[datetime]] = {}
        self._ends: dict[StaffId, list[datetime]] = {}
        self._bookings: dict[StaffId, list[Booking]] = {}
        self._windows: dict[StaffId, dict[date, tuple[tuple[datetime, datetime], ...]]] = {
            member.staff_id: {} for member in self.staff
        }
        # staff id -> (anchor, free_from): no free slot starts in [anchor, free_from).
        self._cursors: dict[StaffId, tuple[datetime, datetime]] = {}
        # Sorted first, so loading a table of bookings appends instead of inserting.
        for existing in sorted(bookings, key=lambda item: item.reserved_start):
            self._insert(existing)

    def __len__(self) -> int:
        return sum(len(items) for items in self._bookings.values())

    def bookings(self, staff_id: StaffId | None = None) -> list[Booking]:
        """Return one staff member's bookings in time order, or everyone's."""
        if staff_id is not None:
            return list(self._bookings.get(staff_id, ()))
        return sorted(
            (item for items in self._bookings.values() for item in items),
            key=lambda item: item.reserved_start,
        )

    def _conflict(self, staff_id: StaffId, start: datetime, end: datetime) -> Booking | None:
        """Return the latest-starting booking overlapping [start, end), if any, in O(log n)."""
        starts = self._starts.get(staff_id)
        if not starts:
            return None
        index = bisect.bisect_left(starts, end)
        if index and self._ends[staff_id][index - 1] > start:
            return self._bookings[staff_id][index - 1]
        return None

    def _insert(self, booking: Booking) -> None:
        other = self._conflict(booking.staff_id, booking.reserved_start, booking.reserved_end)
        if other is not None:
            member = self._members.get(booking.staff_id) or StaffAvailability(booking.staff_id)
            raise BookingConflict(_overlap_message(booking, other, member))
        starts = self._starts.setdefault(booking.staff_id, [])
        index = bisect.bisect_right(starts, booking.reserved_start)
        starts.insert(index, booking.reserved_start)
        self._ends.setdefault(booking.staff_id, []).insert(index, booking.reserved_end)
        self._bookings.setdefault(booking.staff_id, []).insert(index, booking)

    def _member(self, staff_id: StaffId) -> StaffAvailability:
        try:
            return self._members[staff_id]
        except KeyError:
            raise BookingConflict(
                f"Membre de l'équipe inconnu : {staff_id!r}. Vérifiez la liste de l'équipe."
            ) from None

    def _day_windows(
        self, member: StaffAvailability, day: date
    ) -> tuple[tuple[datetime, datetime], ...]:
        cache = self._windows[member.staff_id]
        windows = cache.get(day)
        if windows is None:
            windows = cache[day] = member.windows_on(day)
        return windows

    def _first_free(
        self, member: StaffAvailability, start: datetime, limit: datetime
    ) -> Slot | None:
        """Return the member's first free slot whose reserved block starts at or after ``start`` and ends by ``limit``."""
        rules, tz = self.rules, member.tz
        day = start.astimezone(tz).date()
        last_day = limit.astimezone(tz).date()
        while day <= last_day:
            for window_start, window_end in self._day_windows(member, day):
                if window_end <= start:
                    continue
                reserved = max(start, window_start)
                while True:
                    visit = _align_up(reserved + rules.preparation, rules.granularity, tz)
                    reserved = visit - rules.preparation
                    reserved_end = reserved + rules.block
                    if reserved_end > limit:
                        return None
                    if reserved_end > window_end:
                        break
                    other = self._conflict(member.staff_id, reserved, reserved_end)
                    if other is None:
                        return Slot(
                            member.staff_id, visit, visit + rules.visit, reserved, reserved_end
                        )
                    # Every candidate before that booking's end overlaps it: jump past it.
                    reserved = other.reserved_end
            day += _DAY
        return None

    def _free_slots(
        self, member: StaffAvailability, lower: datetime, limit: datetime, count: int
    ) -> list[Slot]:
        """Return the member's first ``count`` free slots from ``lower``, resuming from the cursor."""
        start = anchor = lower
        known = self._cursors.get(member.staff_id)
        if known is not None and known[0] <= lower <= known[1]:
            anchor, start = known
        first = self._first_free(member, start, limit)
        if first is None:
            return []
        # Bookings only ever remove free slots, so this stays true until one is cancelled.
        self._cursors[member.staff_id] = (anchor, first.reserved_start)
        slots = [first]
        while len(slots) < count:
            following = self._first_free(member, slots[-1].reserved_start + _TICK, limit)
            if following is None:
                break
            slots.append(following)
        return slots

    def propose(
        self,
        *,
        now: datetime,
        count: int = 3,
        not_before: datetime | None = None,
        one_per_time: bool = True,
    ) -> list[Slot]:
        """Return the earliest ``count`` free slots across staff (fewer, or none, if the horizon is full).

        With ``one_per_time`` a company is offered distinct times; when several staff members
        are free at the same time, the first of them in ``staff`` order gets the slot.
        """
        if count < 1:
            raise ValueError("count must be at least 1")
        now = _aware(now, "now")
        floor = now if not_before is None else max(now, _aware(not_before, "not_before"))
        limit = now + self.rules.horizon
        found: list[tuple[datetime, int, Slot]] = []
        for index, member in enumerate(self.staff):
            lower = max(floor, earliest_start(member, self.rules, now))
            for slot in self._free_slots(member, lower, limit, count):
                found.append((slot.visit_start, index, slot))
        found.sort(key=lambda item: (item[0], item[1]))
        slots: list[Slot] = []
        for visit_start, _, slot in found:
            if one_per_time and slots and slots[-1].visit_start == visit_start:
                continue
            slots.append(slot)
            if len(slots) == count:
                break
        return slots

    def book(self, slot: Slot, *, now: datetime, company_id: CompanyId | None = None) -> Booking:
        """Check the slot against the rules and this diary, record it, and return the new booking."""
        member = self._member(slot.staff_id)
        booking = Booking(
            slot.staff_id,
            slot.reserved_start,
            slot.reserved_end,
            slot.visit_start,
            slot.visit_end,
            company_id,
        )
        _check_calendar(booking, member, self.rules, now)
        self._insert(booking)
        return booking

    def book_earliest(
        self,
        *,
        now: datetime,
        company_id: CompanyId | None = None,
        not_before: datetime | None = None,
    ) -> Booking:
        """Book and return the earliest free slot, or raise NoSlotAvailable when the horizon is full."""
        proposed = self.propose(now=now, count=1, not_before=not_before)
        if not proposed:
            tz = self.staff[0].tz if self.staff else ZoneInfo("Europe/Paris")
            team = ", ".join(member.label for member in self.staff) or "personne"
            raise NoSlotAvailable(
                f"Aucun créneau de visite libre d'ici le {french.moment(now + self.rules.horizon, tz)} "
                f"(horizon de {self.rules.horizon.days} jours) pour : {team}. Libérez des créneaux, "
                "ajoutez des plages de disponibilité ou allongez l'horizon de réservation."
            )
        return self.book(proposed[0], now=now, company_id=company_id)

    def cancel(self, booking: Booking) -> None:
        """Remove a booking, freeing its slot; raises KeyError if the diary does not hold it."""
        items = self._bookings.get(booking.staff_id, [])
        index = bisect.bisect_left(self._starts.get(booking.staff_id, []), booking.reserved_start)
        if index >= len(items) or items[index] != booking:
            raise KeyError(booking)
        del items[index], self._starts[booking.staff_id][index], self._ends[booking.staff_id][index]
        # A freed slot may lie behind the cursor: forget it, the next search rescans once.
        self._cursors.pop(booking.staff_id, None)


def propose_slots(
    *,
    staff: Sequence[StaffAvailability],
    bookings: Sequence[Booking],
    rules: VisitRules,
    now: datetime,
    count: int = 3,
    not_before: datetime | None = None,
) -> list[Slot]:
    """Return the earliest ``count`` free slots across staff, at distinct times, given existing bookings."""
    diary = Diary(staff=staff, rules=rules, bookings=bookings)
    return diary.propose(now=now, count=count, not_before=not_before)


def book_earliest(
    *,
    staff: Sequence[StaffAvailability],
    bookings: Sequence[Booking],
    rules: VisitRules,
    now: datetime,
    company_id: CompanyId | None = None,
    not_before: datetime | None = None,
) -> Booking:
    """Return a booking of the earliest free slot, or raise NoSlotAvailable; use a Diary to book many."""
    diary = Diary(staff=staff, rules=rules, bookings=bookings)
    return diary.book_earliest(now=now, company_id=company_id, not_before=not_before)


def book(
    slot: Slot,
    *,
    staff: Sequence[StaffAvailability],
    bookings: Sequence[Booking],
    rules: VisitRules,
    now: datetime,
    company_id: CompanyId | None = None,
) -> Booking:
    """Return a booking of a chosen slot, or raise BookingConflict if it breaks a rule."""
    members = {member.staff_id: member for member in staff}
    if slot.staff_id not in members:
        raise BookingConflict(
            f"Membre de l'équipe inconnu : {slot.staff_id!r}. Vérifiez la liste de l'équipe."
        )
    booking = Booking(
        slot.staff_id,
        slot.reserved_start,
        slot.reserved_end,
        slot.visit_start,
        slot.visit_end,
        company_id,
    )
    check_booking(booking, members[slot.staff_id], rules, bookings, now=now)
    return booking
