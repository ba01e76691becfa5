"""Calendar invitations over e-mail (iTIP) for visits and meetings: REQUEST and CANCEL out, REPLY back in.

The one module that builds iCalendar documents: visits and quarterly meetings share ``Invitation``.
"""

from __future__ import annotations

import calendar
import re
import secrets
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import (
    STATUS,
    TRANSP,
    Alarm,
    Calendar,
    Event,
    Timezone,
    TimezoneDaylight,
    TimezoneStandard,
    vCalAddress,
)
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from channels.base import Attachment
from channels.mime import envelope_address, single_line
from synergie import french

__all__ = [
    "ALARM_BEFORE",
    "MEETING_PRODID",
    "PRODID",
    "VISIT_DURATION",
    "InvalidReply",
    "Invitation",
    "InvitationReply",
    "Participant",
    "Partstat",
    "VisitInvitation",
    "build_cancel",
    "build_for_attendees",
    "build_request",
    "invitation_email_parts",
    "meeting_uid",
    "parse_reply",
    "visit_description",
    "visit_summary",
    "new_visit_uid",
]

PRODID = "-//Synergie//Visites//FR"
MEETING_PRODID = "-//Synergie//Rencontres//FR"
VISIT_DURATION = timedelta(hours=1)
# The day before: the contact has to be on site and free, perhaps with waste invoices at hand;
# a reminder minutes before an on-site visit comes too late to rearrange anything. Outlook and
# Gmail often replace it with the reader's own default reminder; Apple and Thunderbird keep it.
ALARM_BEFORE = timedelta(days=1)

Partstat = Literal["ACCEPTED", "DECLINED", "TENTATIVE"]
_ANSWERS: frozenset[str] = frozenset({"ACCEPTED", "DECLINED", "TENTATIVE"})
_METHODS = frozenset({"REQUEST", "CANCEL"})
_BYDAY = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
# RFC 5545 TEXT forbids control characters except HTAB; DESCRIPTION keeps its line breaks.
_TEXT_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029]+")
# Printable ASCII without space, "<" or ">": safe in a UID and in a Message-ID built from it.
_UID = re.compile(r"[!-;=?-~]{1,255}\Z")
_HOSTNAME = re.compile(r"(?=.{1,253}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\Z")


class InvalidReply(ValueError):
    """A document that is not a usable iTIP REPLY; the message is in French, for staff."""


@dataclass(frozen=True, slots=True)
class Participant:
    """A person in an invitation: a display name and an e-mail address."""

    name: str
    email: str


@dataclass(frozen=True, slots=True)
class Invitation:
    """One version of an invitation (a visit, a meeting); rescheduling or cancelling makes a revised one.

    ``attendee`` is the only ATTENDEE of this copy: companies invited to the same meeting never
    see each other's addresses. ``what`` names the event in French error messages.
    """

    uid: str
    start: datetime
    end: datetime
    organizer: Participant
    attendee: Participant
    company: str
    location: str
    summary: str
    description: str
    sequence: int = 0
    timezone: str = "Europe/Paris"
    alarm_before: timedelta | None = ALARM_BEFORE
    prodid: str = PRODID
    what: str = "la visite"
    # ACCEPTED on the copy confirming a registration; a first invitation asks (NEEDS-ACTION).
    attendee_partstat: str = "NEEDS-ACTION"

    def __post_init__(self) -> None:
        if not _UID.match(self.uid):
            raise ValueError(f"identifiant d'invitation invalide : {self.uid!r}")
        if isinstance(self.sequence, bool) or not isinstance(self.sequence, int):
            raise ValueError(f"SEQUENCE doit être un entier : {self.sequence!r}")
        if self.sequence < 0:
            raise ValueError(f"SEQUENCE ne peut pas être négatif : {self.sequence}")
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError(f"le début et la fin de {self.what} doivent porter un fuseau horaire")
        # In UTC: aware datetimes sharing a tzinfo compare by wall clock, blind to DST.
        if self.end.astimezone(UTC) <= self.start.astimezone(UTC):
            raise ValueError(f"la fin de {self.what} doit suivre son début")
        if _known_zone(self.timezone) is None:
            raise ValueError(f"fuseau horaire inconnu : {self.timezone!r} (exemple : Europe/Paris)")
        if self.alarm_before is not None and self.alarm_before < timedelta(0):
            raise ValueError(f"le rappel doit précéder {self.what} (alarm_before >= 0)")
        for role, person in (("l'organisateur", self.organizer), ("le contact", self.attendee)):
            try:
                envelope_address(person.email)
            except ValueError as exc:
                raise ValueError(f"adresse e-mail invalide pour {role} : {person.email!r}") from exc

    @classmethod
    def for_visit(
        cls,
        *,
        uid: str,
        start: datetime,
        company: str,
        location: str,
        contact: Participant,
        officer: Participant,
        officer_phone: str,
        programme_name: str,
        sequence: int = 0,
        timezone: str = "Europe/Paris",
    ) -> Invitation:
        """Return the invitation to a one-hour visit under the visit's stored UID, with French texts."""
        return cls(
            uid=uid,
            start=start,
            end=start.astimezone(UTC) + VISIT_DURATION,
            organizer=officer,
            attendee=contact,
            company=company,
            location=location,
            summary=visit_summary(programme_name, company),
            description=visit_description(
                programme_name=programme_name,
                officer_name=officer.name,
                officer_phone=officer_phone,
            ),
            sequence=sequence,
            timezone=timezone,
        )

    def revised(self, *, start: datetime | None = None, end: datetime | None = None) -> Invitation:
        """Return the next version (SEQUENCE + 1), moved to ``start`` keeping its length if given."""
        new_start = self.start if start is None else start
        # Elapsed time, in UTC: wall-clock arithmetic would stretch a visit across a DST change.
        length = self.end.astimezone(UTC) - self.start.astimezone(UTC)
        new_end = end if end is not None else new_start.astimezone(UTC) + length
        return replace(self, sequence=self.sequence + 1, start=new_start, end=new_end)


# Visits used the name first; it stays for them (one type, one module, for every invitation).
VisitInvitation = Invitation


@dataclass(frozen=True, slots=True)
class InvitationReply:
    """An attendee's answer read from an iTIP REPLY; ``start`` and ``stamp`` in UTC when known."""

    uid: str
    sequence: int
    attendee: str
    partstat: Partstat
    comment: str | None = None
    start: datetime | None = None
    stamp: datetime | None = None


def new_visit_uid(domain: str) -> str:
    """Return a new random UID for a visit (``visite-<random>@domain``), kept for all its versions.

    Random, not the row id: a sequential UID let anyone who saw one invitation forge a
    reply to every other visit. 144 bits cannot be guessed.
    """
    return f"visite-{secrets.token_urlsafe(18)}@{_host(domain)}"


def meeting_uid(domain: str) -> str:
    """Return a new random UID for a meeting, kept by every version of its invitations."""
    # Random, not derived from the row id: two territories (or a rebuilt database) must never
    # send two different meetings under one UID, which calendars would merge.
    return f"rencontre-{uuid.uuid4().hex}@{_host(domain)}"


def _host(domain: str) -> str:
    host = domain.strip().lower().rstrip(".")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"nom de domaine invalide : {domain!r}") from exc
    if not _HOSTNAME.match(host):
        raise ValueError(f"nom de domaine invalide : {domain!r}")
    return host


def visit_summary(programme_name: str, company: str) -> str:
    """Return the French title of a visit, e.g. « Visite Économie positive — Menuiserie Martin »."""
    return f"Visite {_one_line(programme_name)} — {_one_line(company)}"


def visit_description(
    *,
    programme_name: str,
    officer_name: str,
    officer_phone: str,
    duration: timedelta = VISIT_DURATION,
) -> str:
    """Return the French description of a visit: its purpose, length and whom to call."""
    return (
        f"Rencontre {_french_length(duration)} sur votre site, dans le cadre du programme "
        f"{_one_line(programme_name)} : faire le point sur vos flux (déchets, matières, "
        "énergie, eau) et repérer les échanges possibles avec les entreprises voisines.\n"
        f"Votre contact : {_one_line(officer_name)}, {_one_line(officer_phone)}.\n"
        "Pour décaler ou annuler, répondez à cette invitation ou appelez ce numéro."
    )


def _french_length(duration: timedelta) -> str:
    """Return « d'une heure », « de 2 heures » or « de 90 minutes » for a meeting's length."""
    if duration == timedelta(hours=1):
        return "d'une heure"
    return f"de {french.duration(duration)}"


def build_request(invitation: Invitation, *, now: datetime) -> bytes:
    """Return the METHOD:REQUEST document inviting the attendee, as bytes to send."""
    return _build(invitation, now=now, method="REQUEST")


def build_cancel(invitation: Invitation, *, now: datetime) -> bytes:
    """Return the METHOD:CANCEL document withdrawing the visit; its SEQUENCE must be above 0."""
    if invitation.sequence < 1:
        # Clients drop a CANCEL whose SEQUENCE is not above the REQUEST's (RFC 5546 §2.1.5).
        raise ValueError("une annulation doit porter un SEQUENCE supérieur à celui de l'invitation")
    return _build(invitation, now=now, method="CANCEL")


def invitation_email_parts(
    ics: bytes, *, filename: str = "invitation.ics", method: str | None = None
) -> tuple[tuple[tuple[bytes, str], ...], tuple[Attachment, ...]]:
    """Return ``OutgoingEmail.alternatives`` and ``.attachments`` carrying ``ics`` (method read from it).

    ``method`` may be given by a caller that built ``ics`` here and knows it: reading the
    document back costs more than building it.
    """
    if method is not None:
        if method not in _METHODS:
            raise ValueError(f"METHOD attendu : REQUEST ou CANCEL, trouvé : {method}")
        alternative = (ics, f"text/calendar; method={method}; charset=utf-8")
        return (alternative,), (Attachment(filename, ics, "application/ics"),)
    # The text/calendar alternative with method= is what makes Outlook and Gmail show accept /
    # decline; the application/ics attachment serves clients that only offer files. Reading the
    # method from the document keeps the Content-Type and METHOD from ever disagreeing.
    try:
        document = Calendar.from_ical(ics)
    except (ValueError, OSError) as exc:
        raise ValueError("ics n'est pas un document iCalendar") from exc
    method = str(document.get("METHOD", "")).upper() if isinstance(document, Calendar) else ""
    if method not in _METHODS:
        raise ValueError(f"METHOD attendu : REQUEST ou CANCEL, trouvé : {method or 'aucun'}")
    alternative = (ics, f"text/calendar; method={method}; charset=utf-8")
    return (alternative,), (Attachment(filename, ics, "application/ics"),)


def parse_reply(data: bytes) -> InvitationReply:
    """Return the answer in an iTIP REPLY (Outlook, Gmail, Thunderbird...); raise InvalidReply otherwise."""
    try:
        return _read_reply(data)
    except InvalidReply:
        raise
    except (ValueError, OSError, KeyError, IndexError, TypeError, AttributeError) as exc:
        # icalendar raises these on broken values (vBroken, bad dates); never let them escape raw.
        raise InvalidReply(f"Réponse d'agenda illisible : {exc}") from exc


def _build(invitation: Invitation, *, now: datetime, method: str) -> bytes:
    """Return the serialised calendar for ``invitation`` with ``method``."""
    if now.tzinfo is None:
        raise ValueError("now doit porter un fuseau horaire")
    zone = ZoneInfo(invitation.timezone)
    start = _wall_time(invitation.start, zone)
    end = _wall_time(invitation.end, zone)
    cancelling = method == "CANCEL"
    attendee = _attendee(invitation, cancelling=cancelling)
    organizer = vCalAddress.new(
        envelope_address(invitation.organizer.email),
        cn=_parameter_text(invitation.organizer.name) or None,
    )
    alarms = []
    if not cancelling and invitation.alarm_before is not None:
        alarms.append(
            Alarm.new_display(
                description=(
                    f"Rappel : {_one_line(invitation.summary)}, le "
                    f"{french.moment(invitation.start, zone)}."
                ),
                trigger=-invitation.alarm_before,
            )
        )
    event = Event.new(
        uid=invitation.uid,
        sequence=invitation.sequence,
        stamp=now.astimezone(UTC),
        start=start,
        end=end,
        organizer=organizer,
        attendees=[attendee],
        location=_one_line(invitation.location) or None,
        summary=_one_line(invitation.summary) or None,
        description=_multiline_text(invitation.description) or None,
        status=STATUS.CANCELLED if cancelling else STATUS.CONFIRMED,
        transparency=TRANSP.OPAQUE,
        subcomponents=alarms,
    )
    document = Calendar.new(prodid=invitation.prodid, method=method, subcomponents=[event])
    # Calendar.new adds a random calendar UID (RFC 7986); without it the same invitation and
    # clock always give the same bytes, so a re-rendered outbox row is identical.
    del document["UID"]
    first = date(min(start, end).year - 1, 1, 1)
    last = date(max(start, end).year + 2, 1, 1)
    if zone in (start.tzinfo, end.tzinfo):
        vtimezone = _yearly_timezone(invitation.timezone, first.year, last.year - 1)
        if vtimezone is not None:
            document.subcomponents.insert(0, vtimezone)
    # The fallback for zones without a yearly rule: RDATE lists over the visit's years.
    document.add_missing_timezones(first_date=first, last_date=last)
    if document.get_missing_tzids():
        raise ValueError(f"pas de VTIMEZONE pour {invitation.timezone!r}")
    return document.to_ical()


def _attendee(invitation: Invitation, *, cancelling: bool) -> vCalAddress:
    """Return the ATTENDEE of ``invitation``'s copy: its one contact, asked to answer unless cancelling."""
    return vCalAddress.new(
        envelope_address(invitation.attendee.email),
        cn=_parameter_text(invitation.attendee.name) or None,
        role="REQ-PARTICIPANT",
        # A CANCEL asks for no answer (RFC 5546 §3.2.5).
        partstat=None if cancelling else invitation.attendee_partstat,
        rsvp=None if cancelling else True,
    )


def _attendee_line(invitation: Invitation, *, cancelling: bool) -> bytes:
    """Return the ATTENDEE content line of ``invitation``'s copy, folded, as icalendar writes it."""
    return Event().content_line("ATTENDEE", _attendee(invitation, cancelling=cancelling)).to_ical()


def build_for_attendees(
    invitation: Invitation,
    attendees: Sequence[Participant],
    *,
    now: datetime,
    method: str = "REQUEST",
) -> Iterator[bytes]:
    """Yield, for each attendee in turn, the REQUEST (or CANCEL) naming only them as ATTENDEE.

    The same bytes as ``build_request(replace(invitation, attendee=a))`` for each one, but the
    document is built once and only its ATTENDEE line is written per attendee: thousands of
    invitations to one meeting cost little more than one.
    """
    if method not in _METHODS:
        raise ValueError(f"METHOD attendu : REQUEST ou CANCEL, trouvé : {method}")
    cancelling = method == "CANCEL"
    template = (
        build_cancel(invitation, now=now) if cancelling else build_request(invitation, now=now)
    )
    own = _attendee_line(invitation, cancelling=cancelling)
    if template.count(own) != 1:  # pragma: no cover (icalendar writes one ATTENDEE line)
        raise ValueError("ATTENDEE introuvable dans le document")
    for person in attendees:
        copy = replace(invitation, attendee=person)  # validates the address like a full build
        yield template.replace(own, _attendee_line(copy, cancelling=cancelling))


def _wall_time(value: datetime, zone: ZoneInfo) -> datetime:
    """Return ``value`` as a wall-clock time in ``zone``, or in UTC when that time is ambiguous."""
    # A TZID time in autumn's repeated hour means its first occurrence (RFC 5545 §3.3.5): the
    # second can only be written in UTC. Going through UTC also turns a spring-gap time real.
    # iCalendar times stop at the second: drop the rest here rather than leave it to icalendar.
    local = value.astimezone(UTC).replace(microsecond=0).astimezone(zone)
    if local.fold and local.replace(fold=0).utcoffset() != local.utcoffset():
        return local.astimezone(UTC)
    return local


@dataclass(frozen=True, slots=True)
class _Observance:
    """One yearly change of a zone's offset, as a VTIMEZONE STANDARD or DAYLIGHT writes it."""

    month: int
    weekday: int
    ordinal: int
    at: time
    offset_from: timedelta
    offset_to: timedelta
    name: str
    daylight: bool


def _known_zone(name: str) -> ZoneInfo | None:
    """Return the IANA zone called ``name``, or None when there is none."""
    try:
        return ZoneInfo(name)
    # OSError: "Europe" names a directory of the tz database, a very long name is refused.
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _yearly_timezone(tzid: str, first_year: int, last_year: int) -> Timezone | None:
    """Return a VTIMEZONE for ``tzid`` written with yearly RRULEs, or None if the years have no common rule."""
    rules = _yearly_rules(tzid, first_year, last_year)
    if rules is None:
        return None
    zone = ZoneInfo(tzid)
    component = Timezone()
    component.add("TZID", tzid)
    if not rules:
        # No change of offset in these years: one STANDARD observance says it all.
        moment = datetime(first_year, 1, 1, tzinfo=UTC).astimezone(zone)
        offset = moment.utcoffset() or timedelta(0)
        standard = TimezoneStandard()
        standard.add("DTSTART", datetime(first_year, 1, 1))
        standard.add("TZOFFSETFROM", offset)
        standard.add("TZOFFSETTO", offset)
        standard.add("TZNAME", moment.tzname() or tzid)
        component.add_component(standard)
        return component
    for rule in rules:
        observance = TimezoneDaylight() if rule.daylight else TimezoneStandard()
        onset = _nth_weekday(first_year, rule.month, rule.weekday, rule.ordinal)
        observance.add("DTSTART", datetime.combine(onset, rule.at))
        observance.add("TZOFFSETFROM", rule.offset_from)
        observance.add("TZOFFSETTO", rule.offset_to)
        observance.add("TZNAME", rule.name)
        byday = f"{rule.ordinal}{_BYDAY[rule.weekday]}"
        observance.add("RRULE", {"FREQ": "YEARLY", "BYMONTH": rule.month, "BYDAY": byday})
        component.add_component(observance)
    return component


@lru_cache(maxsize=32)
def _yearly_rules(tzid: str, first_year: int, last_year: int) -> tuple[_Observance, ...] | None:
    """Return the offset changes that recur identically in every year, or None when they differ."""
    zone = ZoneInfo(tzid)
    years = [_observances(zone, year) for year in range(first_year, last_year + 1)]
    if any(observances != years[0] for observances in years[1:]):
        return None
    return years[0]


def _observances(zone: ZoneInfo, year: int) -> tuple[_Observance, ...]:
    """Return each change of ``zone``'s UTC offset in ``year``, described as an nth-weekday rule."""
    found = []
    for instant, offset_from, offset_to in _transitions(zone, year):
        # RFC 5545 writes an onset in the wall-clock time in force just before it.
        local = (instant + offset_from).replace(tzinfo=None)
        days_in_month = calendar.monthrange(local.year, local.month)[1]
        ordinal = -1 if local.day + 7 > days_in_month else (local.day - 1) // 7 + 1
        after = instant.astimezone(zone)
        found.append(
            _Observance(
                month=local.month,
                weekday=local.weekday(),
                ordinal=ordinal,
                at=local.time(),
                offset_from=offset_from,
                offset_to=offset_to,
                name=after.tzname() or "",
                daylight=bool(after.dst()),
            )
        )
    return tuple(found)


def _transitions(zone: ZoneInfo, year: int) -> list[tuple[datetime, timedelta, timedelta]]:
    """Return the UTC instants in ``year`` where ``zone``'s offset changes, with the offsets around them."""
    found = []
    day = datetime(year, 1, 1, tzinfo=UTC)
    before = _offset(zone, day.timestamp())
    while day.year == year:
        following = day + timedelta(days=1)
        after = _offset(zone, following.timestamp())
        if after != before:
            low, high = int(day.timestamp()), int(following.timestamp())
            while high - low > 1:
                middle = (low + high) // 2
                if _offset(zone, middle) == before:
                    low = middle
                else:
                    high = middle
            found.append((datetime.fromtimestamp(high, UTC), before, after))
            before = after
        day = following
    return found


def _offset(zone: ZoneInfo, timestamp: float) -> timedelta:
    """Return ``zone``'s UTC offset at a POSIX timestamp."""
    return datetime.fromtimestamp(timestamp, zone).utcoffset() or timedelta(0)


def _nth_weekday(year: int, month: int, weekday: int, ordinal: int) -> date:
    """Return the ``ordinal``-th ``weekday`` of a month (-1: the last one)."""
    if ordinal < 0:
        last = date(year, month, calendar.monthrange(year, month)[1])
        return last - timedelta(days=(last.weekday() - weekday) % 7)
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (ordinal - 1))


def _one_line(value: str) -> str:
    """Return ``value`` on one line: CR, LF and other controls become a space."""
    return " ".join(single_line(value).split())


def _multiline_text(value: str) -> str:
    """Return ``value`` with LF line breaks only and no other control character but tab."""
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(_TEXT_CONTROLS.sub(" ", line).rstrip() for line in text.split("\n")).strip()


def _parameter_text(value: str) -> str:
    """Return a name fit for a CN parameter, where a double quote cannot be written plainly."""
    # icalendar would encode it per RFC 6868 (^'), which Outlook and Gmail show as is.
    return _one_line(value).replace('"', "'")


def _read_reply(data: bytes) -> InvitationReply:
    """Return the answer in ``data``; the parts of parse_reply that may meet icalendar's errors."""
    if not isinstance(data, bytes | bytearray) or not data.strip():
        raise InvalidReply("Réponse d'agenda vide : le fichier .ics ne contient rien.")
    try:
        document = Calendar.from_ical(bytes(data))
    # OSError too: icalendar hands a TZID like "Europe" to ZoneInfo, which opens a directory.
    except (ValueError, OSError) as exc:
        raise InvalidReply(
            "Ce fichier n'est pas un agenda iCalendar lisible : enregistrez la pièce jointe .ics "
            "de la réponse (« Accepté », « Refusé »...) et réessayez."
        ) from exc
    if not isinstance(document, Calendar):
        raise InvalidReply(
            "Ce fichier ne contient pas d'agenda (VCALENDAR) : ce n'est pas une réponse."
        )
    method = str(document.get("METHOD", "")).strip().upper()
    if method != "REPLY":
        raise InvalidReply(
            f"Ce n'est pas une réponse à une invitation (METHOD:{method or 'absent'}, "
            "attendu : REPLY)."
        )
    events = document.events
    if not events:
        raise InvalidReply("La réponse ne contient aucun événement (VEVENT).")
    event = events[0]
    uid = str(event.get("UID", "")).strip()
    if not uid:
        raise InvalidReply("La réponse ne dit pas à quelle visite elle répond (UID absent).")
    attendees = list(event.attendees)
    if len(attendees) > 1:
        # Some clients list the organiser among the attendees; the one who answered is the other.
        organizer = _mailbox(event.get("ORGANIZER"))
        attendees = [a for a in attendees if _mailbox(a) != organizer]
    if not attendees:
        raise InvalidReply("La réponse ne nomme aucun participant (ATTENDEE absent).")
    if len(attendees) > 1:
        raise InvalidReply(
            "La réponse nomme plusieurs participants : impossible de savoir qui a répondu."
        )
    attendee = _mailbox(attendees[0])
    if attendee is None:
        raise InvalidReply(f"Adresse du participant illisible : {str(attendees[0])!r}.")
    partstat = str(attendees[0].params.get("PARTSTAT", "NEEDS-ACTION")).strip().upper()
    if partstat not in _ANSWERS:
        raise InvalidReply(
            f"Réponse inattendue : PARTSTAT={partstat} (attendu : ACCEPTED, DECLINED ou TENTATIVE)."
        )
    comments = [text for text in (str(c).strip() for c in event.comments) if text]
    return InvitationReply(
        uid=uid,
        sequence=event.sequence,
        attendee=attendee,
        partstat=cast(Partstat, partstat),
        comment="\n".join(comments) or None,
        start=_instant(event, "DTSTART", document),
        stamp=_instant(event, "DTSTAMP", document),
    )


def _mailbox(address: object) -> str | None:
    """Return the lower-case e-mail address of a CAL-ADDRESS, without ``mailto:``, or None."""
    if address is None:
        return None
    if isinstance(address, Sequence) and not isinstance(address, str):
        address = address[0] if address else None
        if address is None:
            return None
    text = str(address).strip()
    if text[:7].lower() == "mailto:":
        text = text[7:]
    try:
        return envelope_address(text).lower()
    except ValueError:
        return None


def _instant(event: Event, name: str, document: Calendar) -> datetime | None:
    """Return a date-time property in UTC, or None when absent, broken, all-day, floating or in an unknown zone."""
    # The zone is looked up by name first (IANA, then Windows names like Outlook's « Romance
    # Standard Time »), then in the document's own VTIMEZONE: icalendar alone reuses, process-wide,
    # the first VTIMEZONE it ever parsed under a non-IANA TZID, whoever sent it.
    prop = event.get(name)
    if prop is None or isinstance(prop, list):
        return None
    try:
        value = prop.dt
    except ValueError:  # a vBroken value: the answer is still worth reading
        return None
    if not isinstance(value, datetime):
        return None
    tzid = prop.params.get("TZID")
    if tzid:
        zone = _zone(str(tzid), document)
        if zone is None:
            return None
        value = value.replace(tzinfo=zone)
    elif value.tzinfo is None:
        return None
    return value.astimezone(UTC)


def _zone(tzid: str, document: Calendar) -> tzinfo | None:
    """Return the time zone a TZID names: IANA, Windows, or the document's VTIMEZONE of that TZID."""
    name = tzid.strip().strip('"').strip("/")
    for candidate in (name, WINDOWS_TO_OLSON.get(name)):
        zone = _known_zone(candidate) if candidate else None
        if zone is not None:
            return zone
    for component in document.timezones:
        if str(component.get("TZID", "")).strip().strip('"').strip("/") == name:
            return component.to_tz(lookup_tzid=False)
    return None
