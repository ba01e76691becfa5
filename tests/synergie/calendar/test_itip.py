"""Visit invitations: every iCal document built is parsed back with icalendar and checked field by field."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Calendar, Event

from channels.base import Attachment, OutgoingEmail
from channels.mime import compose_email
from synergie.calendar.itip import (
    ALARM_BEFORE,
    PRODID,
    InvalidReply,
    InvitationReply,
    Participant,
    VisitInvitation,
    build_cancel,
    build_request,
    invitation_email_parts,
    new_visit_uid,
    parse_reply,
)

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 3, 1, 10, 15, tzinfo=UTC)
OFFICER = Participant("Claire Morel, chargée de mission", "eit@example.org")
CONTACT = Participant("Jean Dupont", "Jean.Dupont@menuiserie-martin.fr")
EVIL = "\r\nATTENDEE:mailto:evil@example.com"


def make_invitation(**overrides: Any) -> VisitInvitation:
    """A one-hour visit on Monday 30 March 2026 at 09:00 Paris time, the day after DST starts."""
    fields: dict[str, Any] = {
        "uid": "visite-42@example.org",
        "start": datetime(2026, 3, 30, 9, 0, tzinfo=PARIS),
        "company": "Menuiserie Martin",
        "location": "12 rue des Tanneurs, 21700 Nuits-Saint-Georges",
        "contact": CONTACT,
        "officer": OFFICER,
        "officer_phone": "03 53 01 00 00",
        "programme_name": "Économie positive",
    }
    fields.update(overrides)
    return VisitInvitation.for_visit(**fields)


def parse(ics: bytes) -> tuple[Any, Any]:
    """The calendar and its only VEVENT, as icalendar reads them back (Any: its property types are unions)."""
    document = Calendar.from_ical(ics)
    assert isinstance(document, Calendar)
    assert len(document.events) == 1
    event: Event = document.events[0]
    return document, event


def content_lines(ics: bytes) -> list[str]:
    """The unfolded content lines of a document (RFC 5545 §3.1)."""
    text = ics.decode("utf-8")
    assert "\n" not in text.replace("\r\n", ""), "bare LF or CR in the document"
    return text.replace("\r\n ", "").replace("\r\n\t", "").split("\r\n")[:-1]


def property_names(ics: bytes) -> list[str]:
    """The name of each content line, BEGIN and END included."""
    return [re.split(r"[;:]", line, maxsplit=1)[0] for line in content_lines(ics)]


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """An instant in UTC."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --- REQUEST ---------------------------------------------------------------------------------


def test_request_parses_back_field_by_field() -> None:
    ics = build_request(make_invitation(), now=NOW)
    document, event = parse(ics)

    assert document["METHOD"] == "REQUEST"
    assert document["PRODID"] == PRODID == "-//Synergie//Visites//FR"
    assert document["VERSION"] == "2.0"
    assert "UID" not in document  # no random calendar UID: same input, same bytes
    assert event["UID"] == "visite-42@example.org"
    assert event["SEQUENCE"] == 0
    assert event["DTSTAMP"].dt == NOW
    assert event["DTSTAMP"].to_ical() == b"20260301T101500Z"
    assert event["STATUS"] == "CONFIRMED"
    assert event["TRANSP"] == "OPAQUE"

    assert event["DTSTART"].params["TZID"] == "Europe/Paris"
    assert event["DTSTART"].dt == datetime(2026, 3, 30, 9, 0, tzinfo=PARIS)
    assert event["DTSTART"].dt.astimezone(UTC) == utc(2026, 3, 30, 7, 0)
    assert event["DTEND"].params["TZID"] == "Europe/Paris"
    assert event["DTEND"].dt.astimezone(UTC) == utc(2026, 3, 30, 8, 0)

    organizer = event["ORGANIZER"]
    assert str(organizer) == "mailto:eit@example.org"
    assert organizer.params["CN"] == "Claire Morel, chargée de mission"
    attendees = event.attendees
    assert len(attendees) == 1
    assert str(attendees[0]) == "mailto:Jean.Dupont@menuiserie-martin.fr"
    assert dict(attendees[0].params) == {
        "CN": "Jean Dupont",
        "RSVP": "TRUE",
        "PARTSTAT": "NEEDS-ACTION",
        "ROLE": "REQ-PARTICIPANT",
    }

    assert event["LOCATION"] == "12 rue des Tanneurs, 21700 Nuits-Saint-Georges"
    assert event["SUMMARY"] == "Visite Économie positive — Menuiserie Martin"
    description = str(event["DESCRIPTION"])
    assert description.startswith("Rencontre d'une heure sur votre site, dans le cadre du ")
    assert "programme Économie positive : faire le point sur vos flux (déchets" in description
    assert "Votre contact : Claire Morel, chargée de mission, 03 53 01 00 00." in description

    (alarm,) = event.walk("VALARM")
    assert alarm["ACTION"] == "DISPLAY"
    assert alarm["TRIGGER"].dt == -timedelta(days=1) == -ALARM_BEFORE
    assert alarm["DESCRIPTION"] == (
        "Rappel : Visite Économie positive — Menuiserie Martin, le lundi 30 mars 2026 à 9 h 00."
    )


def test_request_is_crlf_folded_at_75_octets_and_keeps_accents_whole() -> None:
    ics = build_request(make_invitation(company="Société d'Économie Mixte Éèàçôû " * 4), now=NOW)
    physical = ics.split(b"\r\n")
    assert physical[-1] == b""
    assert all(len(line) <= 75 for line in physical)
    # Folding may not cut a UTF-8 sequence: every physical line decodes on its own.
    for line in physical:
        line.decode("utf-8")
    assert "Société d'Économie Mixte Éèàçôû" in str(parse(ics)[1]["SUMMARY"])


def test_same_invitation_and_clock_give_the_same_bytes() -> None:
    invitation = make_invitation()
    assert build_request(invitation, now=NOW) == build_request(invitation, now=NOW)
    later = build_request(invitation, now=NOW + timedelta(minutes=1))
    changed = set(content_lines(later)) ^ set(content_lines(build_request(invitation, now=NOW)))
    assert {line.split(":")[0] for line in changed} == {"DTSTAMP"}


def test_dtstamp_is_written_in_utc_whatever_the_clock_zone() -> None:
    ics = build_request(make_invitation(), now=datetime(2026, 3, 1, 11, 15, tzinfo=PARIS))
    assert "DTSTAMP:20260301T101500Z" in content_lines(ics)


@pytest.mark.parametrize(
    ("local", "expected_utc"),
    [
        pytest.param(datetime(2026, 1, 15, 9, 0), utc(2026, 1, 15, 8, 0), id="winter"),
        pytest.param(datetime(2026, 7, 15, 9, 0), utc(2026, 7, 15, 7, 0), id="summer"),
        pytest.param(datetime(2026, 3, 28, 9, 0), utc(2026, 3, 28, 8, 0), id="eve-of-spring"),
        pytest.param(datetime(2026, 3, 29, 9, 0), utc(2026, 3, 29, 7, 0), id="spring-change-day"),
        pytest.param(datetime(2026, 3, 30, 9, 0), utc(2026, 3, 30, 7, 0), id="after-spring"),
        pytest.param(datetime(2026, 10, 24, 9, 0), utc(2026, 10, 24, 7, 0), id="eve-of-autumn"),
        pytest.param(datetime(2026, 10, 25, 9, 0), utc(2026, 10, 25, 8, 0), id="autumn-change-day"),
        pytest.param(datetime(2026, 10, 26, 9, 0), utc(2026, 10, 26, 8, 0), id="after-autumn"),
        pytest.param(datetime(2027, 3, 29, 9, 0), utc(2027, 3, 29, 7, 0), id="after-spring-2027"),
    ],
)
def test_paris_times_are_written_as_wall_time_with_the_right_utc_instant(
    local: datetime, expected_utc: datetime
) -> None:
    ics = build_request(make_invitation(start=local.replace(tzinfo=PARIS)), now=NOW)
    _, event = parse(ics)
    assert f"DTSTART;TZID=Europe/Paris:{local:%Y%m%dT%H%M%S}" in content_lines(ics)
    end = local + timedelta(hours=1)
    assert f"DTEND;TZID=Europe/Paris:{end:%Y%m%dT%H%M%S}" in content_lines(ics)
    assert event["DTSTART"].dt.astimezone(UTC) == expected_utc
    assert event["DTEND"].dt.astimezone(UTC) == expected_utc + timedelta(hours=1)
    # The offset of the VTIMEZONE we wrote gives the same instant as the IANA zone.
    own_zone = document_zone(ics)
    assert local.replace(tzinfo=own_zone).astimezone(UTC) == expected_utc


def test_a_start_given_in_utc_is_written_in_paris_time() -> None:
    ics = build_request(make_invitation(start=utc(2026, 10, 26, 8, 0)), now=NOW)
    assert "DTSTART;TZID=Europe/Paris:20261026T090000" in content_lines(ics)
    assert "DTEND;TZID=Europe/Paris:20261026T100000" in content_lines(ics)


def document_zone(ics: bytes) -> Any:
    """The tzinfo icalendar builds from the document's own VTIMEZONE, not from its TZID."""
    document, _ = parse(ics)
    (vtimezone,) = document.timezones
    return vtimezone.to_tz(lookup_tzid=False)


def test_vtimezone_has_yearly_rules_that_match_paris_hour_by_hour() -> None:
    ics = build_request(make_invitation(), now=NOW)
    document, _ = parse(ics)
    names = property_names(ics)
    assert names.index("BEGIN") == 0
    assert names.count("TZID") == 1
    assert content_lines(ics).index("BEGIN:VTIMEZONE") < content_lines(ics).index("BEGIN:VEVENT")
    (vtimezone,) = document.timezones
    assert vtimezone.name == "VTIMEZONE"
    assert vtimezone["TZID"] == "Europe/Paris"
    (standard,) = vtimezone.standard
    (daylight,) = vtimezone.daylight
    # RRULEs, not RDATE lists: Outlook shifts summer events by an hour with the latter.
    assert "RDATE" not in standard and "RDATE" not in daylight
    assert daylight["RRULE"].to_ical() == b"FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3"
    assert standard["RRULE"].to_ical() == b"FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10"
    assert daylight["TZOFFSETFROM"].td == standard["TZOFFSETTO"].td == timedelta(hours=1)
    assert daylight["TZOFFSETTO"].td == standard["TZOFFSETFROM"].td == timedelta(hours=2)
    assert {"TZOFFSETFROM:+0100", "TZOFFSETTO:+0200", "TZNAME:CEST"} <= set(content_lines(ics))
    assert daylight["DTSTART"].dt == datetime(2025, 3, 30, 2, 0)
    assert standard["DTSTART"].dt == datetime(2025, 10, 26, 3, 0)

    own_zone = vtimezone.to_tz(lookup_tzid=False)
    instant = utc(2026, 1, 1)
    while instant < utc(2028, 1, 1):
        assert instant.astimezone(own_zone).utcoffset() == instant.astimezone(PARIS).utcoffset()
        instant += timedelta(minutes=30)


def test_a_zone_whose_rule_changed_falls_back_to_icalendars_vtimezone() -> None:
    # France moved the end of summer time from September to October in 1996: no yearly rule.
    ics = build_request(make_invitation(start=datetime(1996, 6, 3, 9, 0, tzinfo=PARIS)), now=NOW)
    document, event = parse(ics)
    (vtimezone,) = document.timezones
    assert vtimezone["TZID"] == "Europe/Paris"
    assert vtimezone.standard and vtimezone.daylight
    assert event["DTSTART"].dt.astimezone(UTC) == utc(1996, 6, 3, 7, 0)
    own_zone = vtimezone.to_tz(lookup_tzid=False)
    for instant in (utc(1995, 9, 30, 12), utc(1996, 6, 3, 7), utc(1996, 10, 1), utc(1997, 1, 5)):
        assert instant.astimezone(own_zone).utcoffset() == instant.astimezone(PARIS).utcoffset()


def test_a_zone_without_daylight_saving_gets_one_standard_observance() -> None:
    cayenne = ZoneInfo("America/Cayenne")
    invitation = make_invitation(
        start=datetime(2026, 7, 1, 9, 0, tzinfo=cayenne), timezone="America/Cayenne"
    )
    ics = build_request(invitation, now=NOW)
    document, event = parse(ics)
    (vtimezone,) = document.timezones
    (standard,) = vtimezone.standard
    assert not vtimezone.daylight
    assert standard["TZOFFSETFROM"].td == standard["TZOFFSETTO"].td == timedelta(hours=-3)
    assert {"TZOFFSETFROM:-0300", "TZOFFSETTO:-0300"} <= set(content_lines(ics))
    assert "DTSTART;TZID=America/Cayenne:20260701T090000" in content_lines(ics)
    assert event["DTSTART"].dt.astimezone(UTC) == utc(2026, 7, 1, 12, 0)


def test_the_second_occurrence_of_autumns_repeated_hour_is_written_in_utc() -> None:
    # 02:30 happens twice on 25 October 2026; a TZID time means the first (RFC 5545 §3.3.5).
    first = datetime(2026, 10, 25, 2, 30, tzinfo=PARIS)
    second = first.replace(fold=1)
    ics_first = build_request(make_invitation(start=first), now=NOW)
    ics_second = build_request(make_invitation(start=second), now=NOW)
    assert "DTSTART;TZID=Europe/Paris:20261025T023000" in content_lines(ics_first)
    assert "DTSTART:20261025T013000Z" in content_lines(ics_second)
    assert parse(ics_first)[1]["DTSTART"].dt.astimezone(UTC) == utc(2026, 10, 25, 0, 30)
    assert parse(ics_second)[1]["DTSTART"].dt.astimezone(UTC) == utc(2026, 10, 25, 1, 30)


def test_a_time_in_the_spring_gap_is_written_as_the_real_time_it_stands_for() -> None:
    ics = build_request(make_invitation(start=datetime(2026, 3, 29, 2, 30, tzinfo=PARIS)), now=NOW)
    assert "DTSTART;TZID=Europe/Paris:20260329T033000" in content_lines(ics)
    assert parse(ics)[1]["DTSTART"].dt.astimezone(UTC) == utc(2026, 3, 29, 1, 30)


def test_times_are_written_to_the_second() -> None:
    start = datetime(2026, 3, 30, 9, 0, 59, 999_999, tzinfo=PARIS)
    ics = build_request(make_invitation(start=start), now=NOW)
    assert "DTSTART;TZID=Europe/Paris:20260330T090059" in content_lines(ics)
    assert "DTEND;TZID=Europe/Paris:20260330T100059" in content_lines(ics)


def test_alarm_can_be_changed_or_left_out() -> None:
    two_hours = replace(make_invitation(), alarm_before=timedelta(hours=2))
    (alarm,) = parse(build_request(two_hours, now=NOW))[1].walk("VALARM")
    assert alarm["TRIGGER"].to_ical() == b"-PT2H"
    silent = replace(make_invitation(), alarm_before=None)
    assert parse(build_request(silent, now=NOW))[1].walk("VALARM") == []


# --- rescheduling and cancelling -----------------------------------------------------------


def test_rescheduling_keeps_the_uid_bumps_the_sequence_and_moves_the_times() -> None:
    first = make_invitation()
    moved = first.revised(start=datetime(2026, 11, 3, 14, 0, tzinfo=PARIS))
    _, event = parse(build_request(moved, now=NOW + timedelta(days=2)))
    assert event["UID"] == "visite-42@example.org"
    assert event["SEQUENCE"] == 1
    assert event["DTSTART"].dt.astimezone(UTC) == utc(2026, 11, 3, 13, 0)
    assert event["DTEND"].dt.astimezone(UTC) == utc(2026, 11, 3, 14, 0)
    assert event["DTSTAMP"].dt == NOW + timedelta(days=2)
    assert event.attendees[0].params["PARTSTAT"] == "NEEDS-ACTION"
    again = moved.revised(start=datetime(2026, 11, 4, 10, 0, tzinfo=PARIS))
    assert parse(build_request(again, now=NOW))[1]["SEQUENCE"] == 2
    assert first.sequence == 0  # frozen: the earlier version is untouched


def test_cancel_has_same_uid_higher_sequence_and_cancelled_status() -> None:
    invitation = make_invitation().revised(start=datetime(2026, 4, 2, 9, 0, tzinfo=PARIS))
    request = build_request(invitation, now=NOW)
    cancel = build_cancel(invitation.revised(), now=NOW + timedelta(hours=1))
    document, event = parse(cancel)
    _, requested = parse(request)
    assert document["METHOD"] == "CANCEL"
    assert document["PRODID"] == PRODID
    assert event["STATUS"] == "CANCELLED"
    assert event["UID"] == requested["UID"] == "visite-42@example.org"
    assert event["SEQUENCE"] == 2 > requested["SEQUENCE"] == 1
    assert event["DTSTART"].dt == requested["DTSTART"].dt
    assert str(event["ORGANIZER"]) == "mailto:eit@example.org"
    (attendee,) = event.attendees
    assert str(attendee) == "mailto:Jean.Dupont@menuiserie-martin.fr"
    # A cancellation asks for no answer.
    assert "RSVP" not in attendee.params and "PARTSTAT" not in attendee.params
    assert event.walk("VALARM") == []
    assert len(document.timezones) == 1


def test_cancel_refuses_the_first_sequence() -> None:
    with pytest.raises(ValueError, match="SEQUENCE supérieur"):
        build_cancel(make_invitation(), now=NOW)


# --- escaping: nothing from a name or an address can become a property -------------------------


TRICKY = [
    'Menuiserie "Père" & Fils',
    "Dupont; Martin, Cie",
    "Ligne 1\nLigne 2",
    f"Nom{EVIL}",
    "Nom\rX-INJECTED:1",
    "Nom\r\n DTSTART:19990101T000000",
    "Nul\x00et\x0bvertical\u2028séparateur",
    "Barre \\ oblique : deux-points ^ chapeau",
]


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_texts_create_no_extra_property(text: str) -> None:
    invitation = make_invitation(
        company=text,
        location=f"1 place {text}",
        contact=Participant(text, "contact@example.com"),
        officer=Participant(text, "eit@example.org"),
    )
    invitation = replace(invitation, description=f"Description {text}")
    for ics in (build_request(invitation, now=NOW), build_cancel(invitation.revised(), now=NOW)):
        names = property_names(ics)
        assert names.count("ATTENDEE") == 1
        assert names.count("ORGANIZER") == 1
        assert names.count("DTSTART") == 3  # the event, DAYLIGHT and STANDARD
        assert "X-INJECTED" not in names
        allowed = {
            *("BEGIN", "END", "VERSION", "PRODID", "METHOD", "TZID", "DTSTART", "RRULE"),
            *("TZNAME", "TZOFFSETFROM", "TZOFFSETTO", "SUMMARY", "DTEND", "DTSTAMP", "UID"),
            *("SEQUENCE", "ATTENDEE", "DESCRIPTION", "LOCATION", "ORGANIZER", "STATUS"),
            *("TRANSP", "ACTION", "TRIGGER"),
        }
        assert set(names) <= allowed
        assert all(
            line.startswith(("BEGIN:", "END:")) or names[i] in allowed
            for i, line in enumerate(content_lines(ics))
        )
        assert not any(b"\x00" in line or b"\x0b" in line for line in ics.split(b"\r\n"))

        _, event = parse(ics)
        one_line = " ".join(re.sub(r"[\x00-\x1f\u2028]+", " ", text).split())
        assert event["SUMMARY"] == f"Visite Économie positive — {one_line}"
        assert event["LOCATION"] == f"1 place {one_line}"
        assert event.attendees[0].params["CN"] == one_line.replace('"', "'")
        assert event["ORGANIZER"].params["CN"] == one_line.replace('"', "'")
        assert str(event.attendees[0]) == "mailto:contact@example.com"


def test_description_keeps_its_line_breaks_escaped() -> None:
    invitation = replace(make_invitation(), description=f"Ligne 1\r\nLigne 2\rLigne 3{EVIL}")
    ics = build_request(invitation, now=NOW)
    assert parse(ics)[1]["DESCRIPTION"] == (
        "Ligne 1\nLigne 2\nLigne 3\nATTENDEE:mailto:evil@example.com"
    )
    assert property_names(ics).count("ATTENDEE") == 1
    assert r"DESCRIPTION:Ligne 1\nLigne 2\nLigne 3\nATTENDEE:mailto:evil@example.com" in (
        content_lines(ics)
    )


@pytest.mark.parametrize(
    "email",
    [f"evil@example.com{EVIL}", "pas-une-adresse", "a@b.fr, c@d.fr", 'x"@example.com'],
)
def test_bad_addresses_are_refused(email: str) -> None:
    with pytest.raises(ValueError, match="adresse e-mail invalide pour le contact"):
        make_invitation(contact=Participant("X", email))
    with pytest.raises(ValueError, match="adresse e-mail invalide pour l'organisateur"):
        make_invitation(officer=Participant("X", email))


# --- validation ----------------------------------------------------------------------------


def test_new_visit_uids_are_random_and_checked() -> None:
    # Sequential UIDs (visite-1@…) let a stranger forge a reply to any visit (issue 9, item 7).
    first, second = new_visit_uid("example.org"), new_visit_uid(" Example.ORG. ")
    assert re.fullmatch(r"visite-[A-Za-z0-9_-]{24}@example\.org", first)
    assert first != second and second.endswith("@example.org")
    assert new_visit_uid("mairie-été.fr").endswith("@xn--mairie-t-h1ab.fr")
    make_invitation(uid=first)  # a valid invitation UID
    for domain in ("", "localhost", "exa mple.org", "example.org\r\nX:1", "-bad.org"):
        with pytest.raises(ValueError, match="nom de domaine"):
            new_visit_uid(domain)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"start": datetime(2026, 3, 30, 9, 0)}, "fuseau horaire"),
        ({"end": datetime(2026, 3, 30, 9, 0, tzinfo=PARIS)}, "la fin de la visite"),
        ({"sequence": -1}, "négatif"),
        ({"sequence": True}, "entier"),
        ({"timezone": "Europe/Pariss"}, "fuseau horaire inconnu"),
        ({"timezone": "Europe"}, "fuseau horaire inconnu"),
        ({"timezone": "x" * 300}, "fuseau horaire inconnu"),
        ({"alarm_before": timedelta(minutes=-5)}, "rappel"),
        ({"uid": "visite 42@example.org"}, "identifiant d'invitation"),
        ({"uid": "visite-42@example.org\r\nX:1"}, "identifiant d'invitation"),
    ],
)
def test_invalid_invitations_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(make_invitation(), **change)


def test_a_naive_clock_is_refused() -> None:
    with pytest.raises(ValueError, match="now"):
        build_request(make_invitation(), now=datetime(2026, 3, 1, 10, 0))


# --- reading REPLY documents -----------------------------------------------------------------

# Shapes as the clients send them: Exchange/Outlook names its zone in Windows terms and writes
# MAILTO in capitals; Gmail writes UTC times and extra parameters; Thunderbird writes an IANA
# VTIMEZONE with RRULEs and X-MOZ properties.
OUTLOOK_REPLY = """BEGIN:VCALENDAR
METHOD:REPLY
PRODID:Microsoft Exchange Server 2010
VERSION:2.0
BEGIN:VTIMEZONE
TZID:Romance Standard Time
BEGIN:STANDARD
DTSTART:16010101T030000
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010101T020000
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3
END:DAYLIGHT
END:VTIMEZONE
BEGIN:VEVENT
ATTENDEE;PARTSTAT=DECLINED;CN=Jean Dupont:MAILTO:Jean.Dupont@Menuiserie-Ma
 rtin.FR
COMMENT;LANGUAGE=fr-FR:Je serai en congés cette semaine-là\\, pouvez-vous p
 roposer une autre date ?\\n
SUMMARY;LANGUAGE=fr-FR:Refusé: Visite Économie positive — Menuiserie Martin
DTSTART;TZID=Romance Standard Time:20260330T090000
DTEND;TZID=Romance Standard Time:20260330T100000
UID:visite-42@example.org
CLASS:PUBLIC
PRIORITY:5
DTSTAMP:20260302T081500Z
TRANSP:OPAQUE
STATUS:CONFIRMED
SEQUENCE:0
LOCATION;LANGUAGE=fr-FR:12 rue des Tanneurs\\, 21700 Nuits-Saint-Georges
X-MICROSOFT-CDO-APPT-SEQUENCE:0
X-MICROSOFT-CDO-OWNERAPPTID:-1184723122
X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE
X-MICROSOFT-CDO-INTENDEDSTATUS:BUSY
X-MICROSOFT-CDO-ALLDAYEVENT:FALSE
X-MICROSOFT-CDO-IMPORTANCE:1
X-MICROSOFT-CDO-INSTTYPE:0
X-MICROSOFT-DISALLOW-COUNTER:FALSE
END:VEVENT
END:VCALENDAR
"""

GMAIL_REPLY = """BEGIN:VCALENDAR
PRODID:-//Google Inc//Google Calendar 70.9054//EN
VERSION:2.0
CALSCALE:GREGORIAN
METHOD:REPLY
BEGIN:VEVENT
DTSTART:20260715T070000Z
DTEND:20260715T080000Z
DTSTAMP:20260702T164233Z
ORGANIZER;CN=Claire Morel:mailto:eit@example.org
UID:visite-43@example.org
ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;CN=Marie
  Leroy;X-NUM-GUESTS=0:mailto:marie.leroy@gmail.com
CREATED:20260701T090000Z
DESCRIPTION:Rencontre d'une heure sur votre site
LAST-MODIFIED:20260702T164233Z
LOCATION:ZA des Bréteaux\\, 21700 Nuits-Saint-Georges
SEQUENCE:0
STATUS:CONFIRMED
SUMMARY:Visite Économie positive — Fromagerie Leroy
TRANSP:OPAQUE
END:VEVENT
END:VCALENDAR
"""

THUNDERBIRD_REPLY = """BEGIN:VCALENDAR
PRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN
VERSION:2.0
METHOD:REPLY
BEGIN:VTIMEZONE
TZID:Europe/Paris
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
END:STANDARD
END:VTIMEZONE
BEGIN:VEVENT
CREATED:20261020T120000Z
LAST-MODIFIED:20261021T074500Z
DTSTAMP:20261021T074500Z
UID:visite-44@example.org
SUMMARY:Visite Économie positive — Garage Petit
ORGANIZER;CN=Claire Morel:mailto:eit@example.org
ATTENDEE;RSVP=TRUE;CN=Paul Petit;PARTSTAT=TENTATIVE;ROLE=REQ-PARTICIPANT:ma
 ilto:paul@garage-petit.fr
DTSTART;TZID=Europe/Paris:20261026T090000
DTEND;TZID=Europe/Paris:20261026T100000
SEQUENCE:1
COMMENT:Sous réserve : je confirme lundi.
X-MOZ-RECEIVED-SEQUENCE:1
X-MOZ-RECEIVED-DTSTAMP:20261020T120000Z
X-MOZ-GENERATION:1
END:VEVENT
END:VCALENDAR
"""


def crlf(text: str) -> bytes:
    """A sample written with LF, as the CRLF bytes a mailbox saves."""
    return text.replace("\n", "\r\n").encode("utf-8")


def test_outlook_reply_with_a_windows_zone_name() -> None:
    reply = parse_reply(crlf(OUTLOOK_REPLY))
    assert reply == InvitationReply(
        uid="visite-42@example.org",
        sequence=0,
        attendee="jean.dupont@menuiserie-martin.fr",
        partstat="DECLINED",
        comment="Je serai en congés cette semaine-là, pouvez-vous proposer une autre date ?",
        start=utc(2026, 3, 30, 7, 0),
        stamp=utc(2026, 3, 2, 8, 15),
    )


def test_outlook_zone_name_without_its_vtimezone_still_maps_to_paris() -> None:
    text = re.sub(r"BEGIN:VTIMEZONE.*END:VTIMEZONE\n", "", OUTLOOK_REPLY, flags=re.DOTALL)
    assert "VTIMEZONE" not in text
    text = text.replace("TZID=Romance Standard Time", 'TZID="Romance Standard Time"')
    assert parse_reply(crlf(text)).start == utc(2026, 3, 30, 7, 0)


def test_a_bogus_vtimezone_seen_earlier_does_not_shift_later_replies() -> None:
    # icalendar caches, process-wide, the first VTIMEZONE it parses under a non-IANA TZID. A zone
    # name no other test uses (Berlin keeps Paris's offsets) makes this test the first to parse it.
    berlin = OUTLOOK_REPLY.replace("Romance Standard Time", "W. Europe Standard Time")
    bogus = berlin.replace("+0100", "+0500").replace("+0200", "+0600")
    assert parse_reply(crlf(bogus)).start == utc(2026, 3, 30, 7, 0)
    without_vtimezone = re.sub(r"BEGIN:VTIMEZONE.*END:VTIMEZONE\n", "", berlin, flags=re.DOTALL)
    assert parse_reply(crlf(without_vtimezone)).start == utc(2026, 3, 30, 7, 0)


def test_an_unknown_zone_is_read_from_the_documents_own_vtimezone() -> None:
    custom = OUTLOOK_REPLY.replace("Romance Standard Time", "Heure de Bourgogne (maison)")
    assert parse_reply(crlf(custom)).start == utc(2026, 3, 30, 7, 0)
    without_vtimezone = re.sub(r"BEGIN:VTIMEZONE.*END:VTIMEZONE\n", "", custom, flags=re.DOTALL)
    assert parse_reply(crlf(without_vtimezone)).start is None


def test_gmail_reply() -> None:
    reply = parse_reply(crlf(GMAIL_REPLY))
    assert reply == InvitationReply(
        uid="visite-43@example.org",
        sequence=0,
        attendee="marie.leroy@gmail.com",
        partstat="ACCEPTED",
        comment=None,
        start=utc(2026, 7, 15, 7, 0),
        stamp=utc(2026, 7, 2, 16, 42, 33),
    )


def test_thunderbird_reply_with_lf_line_endings() -> None:
    reply = parse_reply(THUNDERBIRD_REPLY.encode("utf-8"))
    assert reply.uid == "visite-44@example.org"
    assert reply.sequence == 1
    assert reply.attendee == "paul@garage-petit.fr"
    assert reply.partstat == "TENTATIVE"
    assert reply.comment == "Sous réserve : je confirme lundi."
    assert reply.start == utc(2026, 10, 26, 8, 0)


def test_reply_listing_the_organizer_too_names_the_other_attendee() -> None:
    text = GMAIL_REPLY.replace(
        "CREATED:",
        "ATTENDEE;PARTSTAT=ACCEPTED;ROLE=CHAIR:mailto:EIT@example.org\nCREATED:",
    )
    assert parse_reply(crlf(text)).attendee == "marie.leroy@gmail.com"


def test_our_own_request_turned_into_a_reply_round_trips() -> None:
    document, event = parse(build_request(make_invitation().revised(), now=NOW))
    document["METHOD"] = "REPLY"
    event.attendees[0].params["PARTSTAT"] = "ACCEPTED"
    reply = parse_reply(document.to_ical())
    assert (reply.uid, reply.sequence, reply.partstat) == ("visite-42@example.org", 1, "ACCEPTED")
    assert reply.attendee == "jean.dupont@menuiserie-martin.fr"
    assert reply.start == utc(2026, 3, 30, 7, 0)


def _gmail(old: str, new: str) -> bytes:
    """The Gmail sample with one change, which must apply."""
    assert old in GMAIL_REPLY
    return crlf(GMAIL_REPLY.replace(old, new))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"", "vide", id="empty"),
        pytest.param(b"   \r\n", "vide", id="blank"),
        pytest.param(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "pas un agenda", id="pdf"),
        pytest.param(b"Bonjour, je viendrai.", "pas un agenda", id="prose"),
        pytest.param(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n", "pas un agenda", id="truncated"),
        pytest.param(b"BEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\n", "pas d'agenda", id="bare-vevent"),
        pytest.param(_gmail("METHOD:REPLY\n", ""), "METHOD:absent", id="no-method"),
        pytest.param(_gmail("METHOD:REPLY", "METHOD:REQUEST"), "METHOD:REQUEST", id="request"),
        pytest.param(_gmail("METHOD:REPLY", "METHOD:COUNTER"), "METHOD:COUNTER", id="counter"),
        pytest.param(
            crlf(re.sub(r"BEGIN:VEVENT.*END:VEVENT\n", "", GMAIL_REPLY, flags=re.DOTALL)),
            "aucun événement",
            id="no-vevent",
        ),
        pytest.param(_gmail("UID:visite-43@example.org\n", ""), "UID absent", id="no-uid"),
        pytest.param(
            crlf(re.sub(r"ATTENDEE;.*?\n(?=CREATED)", "", GMAIL_REPLY, flags=re.DOTALL)),
            "ATTENDEE absent",
            id="no-attendee",
        ),
        pytest.param(
            _gmail("PARTSTAT=ACCEPTED", "PARTSTAT=NEEDS-ACTION"),
            "PARTSTAT=NEEDS-ACTION",
            id="needs-action",
        ),
        pytest.param(
            _gmail("PARTSTAT=ACCEPTED", "PARTSTAT=DELEGATED"), "PARTSTAT=DELEGATED", id="delegated"
        ),
        pytest.param(_gmail("PARTSTAT=ACCEPTED;", ""), "PARTSTAT=NEEDS-ACTION", id="no-partstat"),
        pytest.param(
            _gmail("CREATED:", "ATTENDEE;PARTSTAT=DECLINED:mailto:autre@example.com\nCREATED:"),
            "plusieurs participants",
            id="two-attendees",
        ),
        pytest.param(
            _gmail(":mailto:marie.leroy@gmail.com", ":mailto:marie.leroy"),
            "Adresse du participant",
            id="bad-address",
        ),
        pytest.param(_gmail("SEQUENCE:0", "SEQUENCE:zéro"), "illisible", id="bad-sequence"),
        pytest.param(
            _gmail("DTSTART:20260715T070000Z", "DTSTART;TZID=Europe:20260715T090000"),
            "pas un agenda",
            id="tzid-is-a-directory",
        ),
        pytest.param(
            _gmail("DTSTART:20260715T070000Z", f"DTSTART;TZID={'x' * 300}:20260715T090000"),
            "pas un agenda",
            id="tzid-too-long",
        ),
    ],
)
def test_invalid_replies_are_refused_in_french(data: bytes, message: str) -> None:
    with pytest.raises(InvalidReply, match=message) as raised:
        parse_reply(data)
    assert isinstance(raised.value, ValueError)


def test_lower_case_partstat_is_understood() -> None:
    assert parse_reply(_gmail("PARTSTAT=ACCEPTED", "PARTSTAT=accepted")).partstat == "ACCEPTED"


# --- the e-mail ------------------------------------------------------------------------------


def test_email_parts_for_request_and_cancel() -> None:
    invitation = make_invitation()
    request = build_request(invitation, now=NOW)
    alternatives, attachments = invitation_email_parts(request)
    assert alternatives == ((request, "text/calendar; method=REQUEST; charset=utf-8"),)
    assert attachments == (Attachment("invitation.ics", request, "application/ics"),)
    cancel = build_cancel(invitation.revised(), now=NOW)
    alternatives, attachments = invitation_email_parts(cancel, filename="annulation.ics")
    assert alternatives == ((cancel, "text/calendar; method=CANCEL; charset=utf-8"),)
    assert attachments == (Attachment("annulation.ics", cancel, "application/ics"),)


@pytest.mark.parametrize(
    "ics", [b"pas un agenda", crlf(GMAIL_REPLY), b"BEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\n"]
)
def test_email_parts_refuse_anything_but_request_or_cancel(ics: bytes) -> None:
    with pytest.raises(ValueError):
        invitation_email_parts(ics)


def test_composed_email_carries_the_invitation_twice_byte_for_byte() -> None:
    ics = build_request(make_invitation(), now=NOW)
    alternatives, attachments = invitation_email_parts(ics)
    message = OutgoingEmail(
        key="visit-42-v0",
        to=CONTACT.email,
        to_name=CONTACT.name,
        subject="Invitation : visite Économie positive le lundi 30 mars à 9 h",
        text="Bonjour,\n\nVoici l'invitation à notre visite.\n",
        html="<p>Bonjour,</p><p>Voici l'invitation à notre visite.</p>",
        message_id="<visit-42-v0@example.org>",
        alternatives=alternatives,
        attachments=attachments,
    )
    raw = compose_email(message, sender="Économie positive <eit@example.org>", date=NOW)
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed.get_content_type() == "multipart/mixed"
    body, attachment = parsed.iter_parts()
    assert body.get_content_type() == "multipart/alternative"
    plain, html, calendar_part = body.iter_parts()
    kinds = [part.get_content_type() for part in (plain, html, calendar_part)]
    assert kinds == ["text/plain", "text/html", "text/calendar"]
    assert calendar_part.get_param("method") == "REQUEST"
    assert calendar_part.get_content_charset() == "utf-8"
    assert calendar_part.get_payload(decode=True) == ics
    assert attachment.get_content_type() == "application/ics"
    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_filename() == "invitation.ics"
    assert attachment.get_payload(decode=True) == ics
    assert parse(calendar_part.get_content())[1]["UID"] == "visite-42@example.org"


# --- property ----------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None, database=None)
@given(
    local=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31, 22)),
    fold=st.integers(min_value=0, max_value=1),
)
def test_any_paris_start_in_2026_2027_parses_back_to_the_same_instant(
    local: datetime, fold: int
) -> None:
    # iCalendar has no fraction of a second: whole seconds are what must survive.
    start = local.replace(tzinfo=PARIS, fold=fold, microsecond=0)
    ics = build_request(make_invitation(start=start), now=NOW)
    _, event = parse(ics)
    # Compared in UTC: equality between datetimes sharing a tzinfo ignores fold.
    assert event["DTSTART"].dt.astimezone(UTC) == start.astimezone(UTC)
    assert event["DTEND"].dt.astimezone(UTC) == start.astimezone(UTC) + timedelta(hours=1)


def test_documents_built_for_many_attendees_equal_one_built_for_each() -> None:
    from dataclasses import replace

    from synergie.calendar.itip import build_for_attendees

    invitation = make_invitation()
    people = [
        Participant("Zoé « Z » Martin", "zoe@example.org"),
        Participant("Léon", "leon@example.com"),
    ]
    now = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    for method, build in (("REQUEST", build_request), ("CANCEL", build_cancel)):
        source = invitation if method == "REQUEST" else invitation.revised()
        batch = list(build_for_attendees(source, people, now=now, method=method))
        assert batch == [build(replace(source, attendee=p), now=now) for p in people]
        unfolded = batch[0].replace(b"\r\n ", b"")
        assert b"zoe@example.org" in unfolded and b"leon@example.com" not in unfolded
    with pytest.raises(ValueError, match="adresse e-mail invalide"):
        list(build_for_attendees(invitation, [Participant("X", "not an address")], now=now))
