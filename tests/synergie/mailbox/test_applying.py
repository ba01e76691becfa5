"""What a mail may change, on SQLite and PostgreSQL: forged or foreign reports, tokens and answers change nothing."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from models import Channel, Contact, MailOutcome, Message, MessageStatus, OptOut, Partstat, Visit
from models.db import session_scope
from synergie.mailbox.applying import Handled, apply_mail
from synergie.mailbox.reading import read_mail
from synergie.messaging.links import unsubscribe_token
from synergie.messaging.rendering import MailTemplates
from synergie.settings import Settings
from tests.factories import NOW, make_company, make_contact
from tests.synergie.mailbox.mails import dsn, gmail_reply, plain_mail, reply_ics
from tests.synergie.mailbox.test_checking import book_two_visits, send_first_mailing

LATER = NOW + timedelta(days=1)


def apply(engine: sa.Engine, settings: Settings, raw: bytes) -> Handled:
    with session_scope(engine) as session:
        return apply_mail(session=session, settings=settings, templates=MailTemplates(),
                          mail=read_mail(raw), now=LATER, actor="test")  # fmt: skip


def invalid_addresses(engine: sa.Engine) -> list[str]:
    with Session(engine) as session:
        return sorted(
            c.email or "" for c in session.exec(select(Contact)) if c.email_invalid_at is not None
        )


def opt_outs(engine: sa.Engine) -> list[tuple[str | None, Channel]]:
    with Session(engine) as session:
        return sorted(
            (session.get(Contact, o.contact_id).email, o.channel)  # type: ignore[union-attr]
            for o in session.exec(select(OptOut))
        )


def test_only_a_report_about_our_message_and_its_recipient_marks_an_address(
    engine: sa.Engine, settings: Settings
) -> None:
    sent = send_first_mailing(engine, settings, people=3)
    p0, p1 = sent["p0@example.org"], sent["p1@example.org"]
    forged_id = p0.replace(b"Message-ID: <", b"Message-ID: <f0f0")
    assert forged_id != p0
    cases = {
        # Anyone can write "Final-Recipient: p1; failed": without our Message-ID it is for staff.
        "unknown message": dsn(forged_id, recipient="p0@example.org"),
        # Our Message-ID, but about someone else (a forward, an alias): not p0's address.
        "other recipient": dsn(p0, recipient="autre@example.net"),
        # Refused as spam / by policy: our fault or theirs, never the address's.
        "policy": dsn(
            p1,
            recipient="p1@example.org",
            status="5.7.1",
            diagnostic="smtp; 550 5.7.1 Message rejected as spam",
        ),  # fmt: skip
        "our sender": dsn(
            p1,
            recipient="p1@example.org",
            status="5.1.8",
            diagnostic="smtp; 553 5.1.8 Sender address rejected",
        ),  # fmt: skip
    }
    for name, raw in cases.items():
        handled = apply(engine, settings, raw)
        assert handled.outcome == MailOutcome.TO_REVIEW, name
    assert invalid_addresses(engine) == []
    with Session(engine) as session:
        assert {m.status for m in session.exec(select(Message))} == {MessageStatus.SENT}
    # A failed delivery whose status is temporary (4.x.x after days of retries): nothing.
    expired = dsn(p1, recipient="p1@example.org", status="4.4.7",
                  diagnostic="smtp; 451 4.4.7 delivery time expired")  # fmt: skip
    assert apply(engine, settings, expired).outcome == MailOutcome.DELAYED
    # The genuine one: marked once, the row bounced with the reason and the SMTP code.
    handled = apply(engine, settings, dsn(p1, recipient="p1@example.org", status="5.2.1",
                                          diagnostic="smtp; 550 5.2.1 mailbox disabled"))  # fmt: skip
    assert handled.outcome == MailOutcome.BOUNCED and "marquée invalide" in handled.detail
    assert invalid_addresses(engine) == ["p1@example.org"]
    with Session(engine) as session:
        row = session.exec(select(Message).where(Message.to_address == "p1@example.org")).one()
        assert (row.status, row.error_code) == (MessageStatus.BOUNCED, 550)
        assert "5.2.1" in (row.last_error or "")
    again = apply(engine, settings, dsn(p1, recipient="p1@example.org"))
    assert again.outcome == MailOutcome.BOUNCED and "déjà marquée" in again.detail


def test_a_bounce_for_an_address_since_corrected_leaves_the_new_one_alone(
    engine: sa.Engine, settings: Settings
) -> None:
    sent = send_first_mailing(engine, settings, people=1)
    with session_scope(engine) as session:
        contact = session.exec(select(Contact)).one()
        contact.email = "corrigee@example.org"
    apply(engine, settings, dsn(sent["p0@example.org"], recipient="p0@example.org"))
    assert invalid_addresses(engine) == []


def test_a_token_unsubscribes_its_contact_and_channel_a_bare_request_only_its_sender(
    engine: sa.Engine, settings: Settings
) -> None:
    with session_scope(engine) as session:
        company = make_company(session)
        anne = make_contact(session, company, email="anne@example.org", phone="+33639981001")
        make_contact(
            session, make_company(session), email="Anne@Example.org"
        )  # same address elsewhere
        make_contact(session, make_company(session), email="bruno@example.org")
        anne_id = anne.public_id
    # A token for SMS, mailed from another address (a forward): the token decides.
    sms_token = unsubscribe_token(settings, anne_id, "sms")
    handled = apply(engine, settings, plain_mail(
        sender="secretariat@example.org", to="eit@example.org", subject=f"desinscription {sms_token}"
    ))  # fmt: skip
    assert handled.outcome == MailOutcome.UNSUBSCRIBED
    assert opt_outs(engine) == [("anne@example.org", Channel.SMS)]
    # A tampered token proves nothing: only the sender's own address is unsubscribed.
    tampered = unsubscribe_token(settings, anne_id, "email")[:-2] + "AA"
    handled = apply(engine, settings, plain_mail(
        sender="bruno@example.org", to="eit@example.org", subject=f"desinscription {tampered}"
    ))  # fmt: skip
    assert handled.outcome == MailOutcome.UNSUBSCRIBED and "invalide" in handled.detail
    assert opt_outs(engine) == [
        ("anne@example.org", Channel.SMS),
        ("bruno@example.org", Channel.EMAIL),
    ]
    # A bare « Désinscription » from Anne: her address, on every row that holds it.
    apply(engine, settings, plain_mail(sender="ANNE@example.org", to="eit@example.org",
                                       subject="Désinscription"))  # fmt: skip
    assert opt_outs(engine) == [
        ("Anne@Example.org", Channel.EMAIL), ("anne@example.org", Channel.EMAIL),
        ("anne@example.org", Channel.SMS), ("bruno@example.org", Channel.EMAIL),
    ]  # fmt: skip
    # From an address no contact has: for staff, nothing written.
    handled = apply(engine, settings, plain_mail(sender="inconnu@example.org",
                                                 to="eit@example.org", subject="unsubscribe"))  # fmt: skip
    assert handled.outcome == MailOutcome.TO_REVIEW and len(opt_outs(engine)) == 4


def test_a_calendar_answer_counts_only_from_the_invited_contact_and_for_a_known_visit(
    engine: sa.Engine, settings: Settings
) -> None:
    [(visit, invited), (other, other_invited)] = book_two_visits(engine, settings)
    # The other visit's contact answering for this visit is not this visit's contact.
    for attendee, uid in ((other_invited, visit.uid), ("intrus@evil.example", visit.uid)):
        ics = reply_ics(uid=uid, attendee=attendee, partstat="DECLINED", start=visit.starts_at)
        handled = apply(engine, settings, gmail_reply(sender=invited, ics=ics))
        assert handled.outcome == MailOutcome.TO_REVIEW and "n'est pas le contact" in handled.detail
    unknown = reply_ics(uid="visite-999@example.org", attendee=invited, partstat="DECLINED",
                        start=visit.starts_at)  # fmt: skip
    assert apply(engine, settings, gmail_reply(sender=invited, ics=unknown)).outcome == (
        MailOutcome.TO_REVIEW
    )
    with Session(engine) as session:
        assert {v.partstat for v in session.exec(select(Visit))} == {Partstat.NEEDS_ACTION}
    declined = reply_ics(
        uid=visit.uid, attendee=invited, partstat="DECLINED", start=visit.starts_at
    )
    handled = apply(engine, settings, gmail_reply(sender=invited, ics=declined))
    assert handled.outcome == MailOutcome.REPLIED and "créneau libéré" in handled.detail
    with Session(engine) as session:
        assert session.exec(select(Visit).where(Visit.uid == visit.uid)).one().partstat == (
            Partstat.DECLINED
        )
        assert session.exec(select(Visit).where(Visit.uid == other.uid)).one().partstat == (
            Partstat.NEEDS_ACTION
        )
