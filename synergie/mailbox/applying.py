"""Act on one incoming mail in the database: mark a bounced address, record an opt-out or a calendar answer.

Each function takes the mail as ``read_mail`` read it and returns what became of it
(``Handled``); it never commits: the caller writes the mail's journal row in the same
transaction, so the effect and "this mail was handled" land together or not at all.
What can be forged decides what is trusted:

- a delivery report counts only when it returns the random Message-ID of an outbox row and
  names that row's recipient (anyone may write "Final-Recipient: x@y; failed"; only the
  recipient's side knows the Message-ID), and only a status about the address itself
  (5.1.x, 5.2.1, 5.4.4) marks it invalid: a refusal of *our* message (5.7.x spam policy,
  5.1.7/5.1.8 about our sender…) is for staff, never blamed on the contact;
- an unsubscribe mail with a genuine signed token opts out that token's contact and channel;
  without one, a mail *from* an address opts out that address only;
- a calendar answer to a visit is recorded only when its attendee is the contact the visit
  invited; one to a quarterly meeting (its UID is the meeting's) only when its attendee is a
  contact of a company on the meeting's list, and then exactly like the portal's answer
  (``synergie.meetings.registrations.record_calendar_reply``: capacity, waiting list,
  promotions); what changed is returned for the ``synergie.invitation.answered`` event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, func, select

from channels.errors import PermanentDeliveryError
from channels.mime import envelope_address
from models.enums import Answer, Channel, MailOutcome
from models.tables import Contact, MailboxMail, Visit
from synergie.calendar.itip import InvalidReply, InvitationReply, parse_reply
from synergie.mailbox.reading import (
    AutoReply,
    CalendarAnswer,
    DeliveryReport,
    MailRead,
    RecipientStatus,
    Unrecognised,
    UnsubscribeRequest,
)
from synergie.meetings.registrations import AnswerRefused, find_meeting_id, record_calendar_reply
from synergie.messaging.links import UNSUBSCRIBE, InvalidToken, read_token
from synergie.messaging.optouts import opt_out
from synergie.messaging.outbox import SentMessage, find_sent_messages, record_late_bounce
from synergie.messaging.rendering import MailTemplates
from synergie.settings import Settings
from synergie.visits.lifecycle import VisitError, record_reply

__all__ = [
    "ADDRESS_STATUSES",
    "Handled",
    "MeetingAnswered",
    "NewOptOut",
    "apply_mail",
    "find_handled",
    "record_handled",
]

logger = logging.getLogger(__name__)

OPT_OUT_SOURCE = "mailto"
# Enhanced status codes (RFC 3463) that are about the recipient's address: 5.1.x (bad mailbox,
# bad domain, bad syntax, moved, null MX…) but 5.1.7 and 5.1.8 (about *our* sender address),
# 5.2.1 (mailbox disabled) and 5.4.4 (no route to that domain).
ADDRESS_STATUSES = ("5.1.", "5.2.1", "5.4.4")
_SENDER_STATUSES = ("5.1.7", "5.1.8")


@dataclass(frozen=True, slots=True)
class NewOptOut:
    """An opt-out a mail recorded for the first time: what the ``synergie.contact.opted-out`` event says."""

    contact_public_id: str
    company_id: int
    channel: Channel


@dataclass(frozen=True, slots=True)
class MeetingAnswered:
    """A meeting answer a calendar reply changed: what the ``synergie.invitation.answered`` event says."""

    meeting_id: int
    company_id: int
    contact_public_id: str
    answer: str


@dataclass(frozen=True, slots=True)
class Handled:
    """What became of one mail: its outcome (which names its folder), a French line saying why, new opt-outs."""

    outcome: MailOutcome
    detail: str
    opt_outs: tuple[NewOptOut, ...] = ()
    meeting_answers: tuple[MeetingAnswered, ...] = ()


def apply_mail(
    *,
    session: Session,
    settings: Settings,
    templates: MailTemplates,
    mail: MailRead,
    now: datetime,
    actor: str,
) -> Handled:
    """Apply what ``mail`` means to the database and return what became of it; never commits."""
    kind = mail.kind
    if isinstance(kind, DeliveryReport):
        return _delivery_report(session, kind, now=now)
    if isinstance(kind, CalendarAnswer):
        return _calendar_answer(session, settings, templates, kind, now=now, actor=actor)
    if isinstance(kind, UnsubscribeRequest):
        return _unsubscribe(session, settings, kind, sender=mail.sender, now=now)
    if isinstance(kind, AutoReply):
        return Handled(MailOutcome.AUTO_REPLY, f"réponse automatique ignorée ({kind.why})")
    assert isinstance(kind, Unrecognised)
    return Handled(MailOutcome.TO_REVIEW, kind.why)


# --- delivery reports ------------------------------------------------------------------------


def _about_the_address(status: str) -> bool:
    return status.startswith(ADDRESS_STATUSES) and not status.startswith(_SENDER_STATUSES)


def _matching_row(block: RecipientStatus, rows: list[SentMessage]) -> SentMessage | None:
    for row in rows:
        if row.to_address.strip().lower() in block.addresses:
            return row
    return None


def _delivery_report(session: Session, report: DeliveryReport, *, now: datetime) -> Handled:
    rows = find_sent_messages(session.connection(), report.original_message_ids)
    bounced: list[str] = []
    review: list[str] = []
    delayed: list[str] = []
    for block in report.recipients:
        who = block.final_recipient or block.original_recipient or "?"
        if block.permanent:
            row = _matching_row(block, rows)
            if row is None:
                review.append(
                    f"échec définitif pour {who} ({block.status}) sans message envoyé "
                    "correspondant (Message-ID et destinataire)"
                )
            elif not _about_the_address(block.status):
                review.append(
                    f"échec définitif pour {who} ({block.status}) qui ne dit pas que l'adresse "
                    f"est fausse : à vérifier ({block.diagnostic or 'sans diagnostic'})"
                )
            else:
                error = PermanentDeliveryError(
                    f"avis de non-remise {block.status} : {block.diagnostic}".strip(" :"),
                    code=_smtp_code(block.diagnostic),
                )
                changed = record_late_bounce(session.connection(), row, error=error, now=now)
                bounced.append(
                    f"{row.to_address} ({block.status}) "
                    + ("marquée invalide" if changed else "déjà marquée invalide")
                )
        elif block.action in ("failed", "delayed"):
            delayed.append(f"{who} ({block.action} {block.status or '?'})")
    if bounced:
        detail = "adresse(s) refusée(s) : " + ", ".join(bounced)
        if review:
            detail += " ; à vérifier : " + " ; ".join(review)
        return Handled(MailOutcome.BOUNCED, detail[:1000])
    if review:
        return Handled(MailOutcome.TO_REVIEW, " ; ".join(review)[:1000])
    if delayed:
        return Handled(
            MailOutcome.DELAYED,
            ("retard ou échec temporaire, rien à faire : " + ", ".join(delayed))[:1000],
        )
    actions = ", ".join(sorted({b.action for b in report.recipients}))
    return Handled(MailOutcome.AUTO_REPLY, f"avis de remise sans échec ({actions})")


def _smtp_code(diagnostic: str) -> int | None:
    """The SMTP reply code in ``smtp; 550 5.1.1 …``, if any."""
    for word in diagnostic.replace(";", " ").split():
        if len(word) == 3 and word.isdigit() and word[0] in "45":
            return int(word)
    return None


# --- unsubscribe mails ---------------------------------------------------------------------


def record_opt_out(*, session: Session, contact: Contact, channel: Channel, now: datetime) -> bool:
    """Record the opt-out an unsubscribe mail asks for, through the one opt-out function; True if new."""
    return bool(
        opt_out(
            session=session, contact=contact, channels=[channel], source=OPT_OUT_SOURCE, now=now
        )
    )


def _unsubscribe(
    session: Session,
    settings: Settings,
    request: UnsubscribeRequest,
    *,
    sender: str | None,
    now: datetime,
) -> Handled:
    problem = ""
    if request.token is not None:
        try:
            claims = read_token(
                request.token, key=settings.link_signing_key, purpose=UNSUBSCRIBE, now=now
            )
        except InvalidToken:
            problem = "lien de désinscription invalide ; "
        else:
            contact = session.exec(
                select(Contact).where(Contact.public_id == claims.subject)
            ).first()
            try:
                channel = Channel(claims.channel or Channel.EMAIL)
            except ValueError:
                channel = Channel.EMAIL
            if contact is not None:
                new = record_opt_out(session=session, contact=contact, channel=channel, now=now)
                return Handled(
                    MailOutcome.UNSUBSCRIBED,
                    f"contact {contact.public_id} désinscrit ({channel.value})"
                    + ("" if new else ", déjà désinscrit"),
                    (NewOptOut(contact.public_id, contact.company_id, channel),) if new else (),
                )
            problem = "lien de désinscription d'un contact disparu ; "
    # No genuine token: a mail *from* an address may unsubscribe that address, and nothing else.
    if not sender:
        return Handled(MailOutcome.TO_REVIEW, problem + "demande de désinscription sans expéditeur")
    contacts = session.exec(
        select(Contact).where(func.lower(func.trim(col(Contact.email))) == sender)
    ).all()
    if not contacts:
        return Handled(
            MailOutcome.TO_REVIEW,
            problem + f"demande de désinscription de {sender}, adresse d'aucun contact",
        )
    fresh = [
        NewOptOut(c.public_id, c.company_id, Channel.EMAIL)
        for c in contacts
        if record_opt_out(session=session, contact=c, channel=Channel.EMAIL, now=now)
    ]
    return Handled(
        MailOutcome.UNSUBSCRIBED,
        problem
        + f"{sender} désinscrite des courriels ({len(contacts)} contact(s)"
        + (f", {len(fresh)} nouveau(x))" if len(fresh) != len(contacts) else ")"),
        tuple(fresh),
    )


# --- calendar answers ------------------------------------------------------------------------


def _same_address(left: str, right: str) -> bool:
    try:
        return envelope_address(left.strip()).lower() == envelope_address(right.strip()).lower()
    except ValueError:
        return False


def _calendar_answer(
    session: Session,
    settings: Settings,
    templates: MailTemplates,
    answer: CalendarAnswer,
    *,
    now: datetime,
    actor: str,
) -> Handled:
    try:
        reply = parse_reply(answer.ics)
    except InvalidReply as exc:
        return Handled(MailOutcome.TO_REVIEW, f"réponse d'agenda illisible : {exc}")
    visit = session.exec(select(Visit).where(Visit.uid == reply.uid)).first()
    if visit is None:
        if find_meeting_id(session, reply.uid) is not None:
            return _meeting_answer(session, reply, now=now)
        return Handled(
            MailOutcome.TO_REVIEW, f"réponse d'agenda à une invitation inconnue ({reply.uid})"
        )
    contact = session.get(Contact, visit.contact_id) if visit.contact_id else None
    if contact is None or not contact.email or not _same_address(reply.attendee, contact.email):
        return Handled(
            MailOutcome.TO_REVIEW,
            f"réponse d'agenda de {reply.attendee}, qui n'est pas le contact invité à la "
            f"visite {visit.uid} : rien n'est enregistré",
        )
    try:
        outcome = record_reply(
            session=session, settings=settings, templates=templates, data=answer.ics, now=now,
            actor=actor,
        )  # fmt: skip
    except (InvalidReply, VisitError) as exc:
        return Handled(MailOutcome.TO_REVIEW, f"réponse d'agenda non enregistrée : {exc}")
    if outcome.stale:
        detail = f"visite {visit.uid} : réponse à une version dépassée, rien n'a changé"
    elif outcome.cancelled:
        detail = f"visite {visit.uid} refusée par {reply.attendee} : créneau libéré"
    else:
        detail = f"visite {visit.uid} : {outcome.partstat.value} par {reply.attendee}"
    return Handled(MailOutcome.REPLIED, detail)


_STANDING = {
    Answer.REGISTERED: "inscrite",
    Answer.WAITING: "sur liste d'attente",
    Answer.DECLINED: "ne vient pas",
    Answer.MAYBE: "viendra peut-être",
    Answer.NO_ANSWER: "sans réponse",
}


def _meeting_answer(session: Session, reply: InvitationReply, *, now: datetime) -> Handled:
    """Record a calendar's answer to a quarterly meeting like the portal's, or say why staff must read it."""
    try:
        result = record_calendar_reply(session=session, data=reply, now=now)
    except AnswerRefused as exc:
        return Handled(
            MailOutcome.TO_REVIEW, f"réponse d'agenda à une rencontre non enregistrée : {exc}"
        )
    registration = result.outcome.registration
    where = f"rencontre n° {result.meeting_id} : {result.company_name}"
    if result.stale:
        return Handled(
            MailOutcome.REPLIED,
            f"{where}, réponse de {result.attendee} à une version dépassée de l'invitation "
            "(autre date, ou copie annulée depuis) : rien n'a changé",
        )
    standing = _STANDING[Answer(registration.status)]
    if registration.status == Answer.REGISTERED:
        standing += f" ({registration.people} personne(s))"
    elif result.outcome.position is not None:
        standing += f" (position {result.outcome.position})"
    if not result.outcome.changed:
        return Handled(MailOutcome.REPLIED, f"{where} {standing}, réponse déjà enregistrée")
    promoted = len(result.outcome.promoted)
    detail = f"{where} {standing}, selon la réponse d'agenda de {result.attendee}" + (
        f" ; {promoted} entreprise(s) quittent la liste d'attente" if promoted else ""
    )
    answered = MeetingAnswered(
        result.meeting_id, result.company_id, result.contact_public_id, registration.status.value
    )
    return Handled(MailOutcome.REPLIED, detail, meeting_answers=(answered,))


# --- the journal -----------------------------------------------------------------------------


def find_handled(*, session: Session, digest: str) -> MailboxMail | None:
    """Return the journal row of the mail with this digest, if it was handled before."""
    return session.exec(select(MailboxMail).where(MailboxMail.digest == digest)).first()


def record_handled(
    *,
    session: Session,
    digest: str,
    mail: MailRead,
    folder: str,
    uidvalidity: int,
    uid: int,
    handled: Handled,
    moved_to: str,
    now: datetime,
) -> MailboxMail:
    """Write (flush) the journal row of a handled mail; a second writer of the same mail fails here."""
    row = MailboxMail(
        digest=digest,
        message_id=(mail.message_id or "")[:300] or None,
        folder=folder[:200],
        uidvalidity=uidvalidity,
        uid=uid,
        outcome=handled.outcome,
        detail=handled.detail[:1000],
        handled_at=now,
        moved_to=moved_to[:200],
    )
    session.add(row)
    session.flush()
    return row
