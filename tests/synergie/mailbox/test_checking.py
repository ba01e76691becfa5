"""The mailbox against a real Dovecot on 127.0.0.1, on SQLite and PostgreSQL: real DSNs for messages
the outbox really sent, the real List-Unsubscribe mailto, Outlook- and Gmail-shaped calendar
answers, an absence, garbage; each handled once, moved to its folder, nothing deleted."""

from __future__ import annotations

import imaplib
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlmodel import Session, col, select

from channels.locmem import MemoryEmailBackend
from models import (
    Campaign,
    Channel,
    Contact,
    MailboxMail,
    MailOutcome,
    Message,
    MessageStatus,
    OptOut,
    Partstat,
    Visit,
    VisitStatus,
)
from models.db import session_scope
from synergie.mailbox.checking import MailboxReport, check_mailbox
from synergie.mailbox.imap import ImapMailbox, MailboxSettingsError
from synergie.mailing.campaigns import (
    MailComposer,
    SendPolicy,
    enqueue_recipients,
    select_recipients,
    send_batch,
)
from synergie.messaging.rendering import MailTemplates
from synergie.settings import Settings
from synergie.visits.lifecycle import add_staff, book_interested
from tests.factories import NOW, make_company, make_contact, make_interested_company
from tests.servers.imap_server import ImapAccount
from tests.synergie.mailbox.mails import (
    GARBAGE,
    dsn,
    gmail_reply,
    out_of_office,
    outlook_reply,
    plain_mail,
    reply_ics,
    unsubscribe_mailto,
)

STEP = "premier-courrier"
LATER = NOW + timedelta(days=1)
ARCHIVE = "Synergie"


def with_imap(settings: Settings, account: ImapAccount) -> Settings:
    """The test's settings pointed at its own Dovecot mailbox (plain IMAP: 127.0.0.1 only)."""
    return settings.model_copy(
        update={
            "imap_host": account.host,
            "imap_port": account.port,
            "imap_security": "none",
            "imap_user": account.user,
            "imap_password": SecretStr(account.password),
        }
    )


def send_first_mailing(engine: sa.Engine, settings: Settings, people: int) -> dict[str, bytes]:
    """Send a campaign step to ``people`` contacts through the outbox; return each address's raw message."""
    with Session(engine) as session:
        campaign = Campaign(name="Nuits", year=2026, communes=["21464"])
        session.add(campaign)
        for n in range(people):
            company = make_company(session, name=f"Entreprise {n:02d}")
            make_contact(
                session, company, email=f"p{n}@example.org", identity=f"email:p{n}@example.org"
            )
        session.commit()
        session.refresh(campaign)
    with engine.begin() as connection:
        due = select_recipients(connection, campaign=campaign, step=STEP)
        enqueue_recipients(
            connection, due, campaign=campaign, step=STEP, domain="example.org", now=NOW
        )
    backend = MemoryEmailBackend(sender=settings.mail_from)
    composer = MailComposer(settings=settings, templates=MailTemplates(), template=STEP)
    policy = SendPolicy(lease=timedelta(minutes=5), max_attempts=3, retry_base=timedelta(seconds=1),
                        actor="test")  # fmt: skip
    send_batch(engine=engine, backend=backend, composer=composer, campaign_id=campaign.id,  # type: ignore[arg-type]
               step=STEP, limit=people, policy=policy, now=lambda: NOW)  # fmt: skip
    return {message.to: backend.raw[message.key] for message in backend.outbox}


def book_two_visits(engine: sa.Engine, settings: Settings) -> list[tuple[Visit, str]]:
    """Two booked visits, each with its invited contact's address."""
    with session_scope(engine) as session:
        add_staff(session=session, name="Claire Martin", email="claire@example.org")
        make_interested_company(session)
        make_interested_company(session)
    with session_scope(engine) as session:
        booked = book_interested(
            session=session, settings=settings, templates=MailTemplates(), now=NOW, actor="test"
        )
        visits = [b.visit for b in booked]
        found = []
        for visit in visits:
            contact = session.get(Contact, visit.contact_id)
            found.append((visit, contact.email))  # type: ignore[union-attr]
    return found  # type: ignore[return-value]


def run(engine: sa.Engine, settings: Settings, *, box: type[ImapMailbox] = ImapMailbox,
        dry_run: bool = False) -> MailboxReport:  # fmt: skip
    password = settings.imap_password.get_secret_value()  # type: ignore[union-attr]
    with box(settings, password=password) as mailbox:
        return check_mailbox(
            engine=engine, settings=settings, templates=MailTemplates(), mailbox=mailbox,
            now=lambda: LATER, actor="test", dry_run=dry_run,
        )  # fmt: skip


def folders(account: ImapAccount) -> dict[str, int]:
    return {name: n for name, n in account.folders().items() if name != ARCHIVE}


def test_each_kind_of_mail_is_acted_on_once_and_filed_where_it_says(
    engine: sa.Engine, settings: Settings, imap_account: ImapAccount
) -> None:
    settings = with_imap(settings, imap_account)
    sent = send_first_mailing(engine, settings, people=4)
    (visit_a, invited_a), (visit_b, invited_b) = book_two_visits(engine, settings)
    comment = "Je viendrai avec le responsable du site"
    mailto, unsubscribe_subject = unsubscribe_mailto(sent["p2@example.org"])
    assert mailto == "eit@example.org" and unsubscribe_subject.startswith("desinscription v1.")
    mails = {
        "bounce": dsn(sent["p0@example.org"], recipient="p0@example.org"),
        "delay": dsn(
            sent["p1@example.org"],
            recipient="p1@example.org",
            action="delayed",
            status="4.4.7",
            diagnostic="smtp; 451 4.4.7 Message delayed",
            whole_message=True,
        ),  # fmt: skip
        "unsubscribe": plain_mail(sender="p2@example.org", to=mailto, subject=unsubscribe_subject),
        # Outlook writes the address in capitals: the check is case-insensitive.
        "outlook": outlook_reply(
            sender=invited_a,
            ics=reply_ics(
                uid=visit_a.uid,
                attendee=invited_a.upper(),
                partstat="ACCEPTED",
                start=visit_a.starts_at,
                comment=comment,
                outlook=True,
            ),  # fmt: skip
        ),
        "gmail": gmail_reply(
            sender=invited_b,
            ics=reply_ics(
                uid=visit_b.uid, attendee=invited_b, partstat="TENTATIVE", start=visit_b.starts_at
            ),  # fmt: skip
        ),
        "stranger-gmail": gmail_reply(
            sender="intrus@evil.example",
            ics=reply_ics(
                uid=visit_a.uid,
                attendee="intrus@evil.example",
                partstat="DECLINED",
                start=visit_a.starts_at,
            ),  # fmt: skip
            subject="Invitation refusée",
        ),
        # A stranger who knows the UID and sends from the contact's address still names himself.
        "stranger-outlook": outlook_reply(
            sender=invited_b,
            ics=reply_ics(
                uid=visit_b.uid,
                attendee="intrus@evil.example",
                partstat="DECLINED",
                start=visit_b.starts_at,
                outlook=True,
            ),  # fmt: skip
            subject="Refusé: Visite de votre site",
        ),
        "absence": out_of_office(
            sender="p3@example.org", subject="Réponse automatique : Votre entreprise"
        ),
        "garbage": GARBAGE,
    }
    for raw in mails.values():
        imap_account.append(raw)

    report = run(engine, settings)

    assert report.counts == {
        MailOutcome.BOUNCED: 1, MailOutcome.DELAYED: 1, MailOutcome.UNSUBSCRIBED: 1,
        MailOutcome.REPLIED: 2, MailOutcome.AUTO_REPLY: 1, MailOutcome.TO_REVIEW: 3,
    }  # fmt: skip
    assert folders(imap_account) == {
        "INBOX": 0, "Synergie/Rejets": 1, "Synergie/Retards": 1, "Synergie/Désinscriptions": 1,
        "Synergie/Réponses": 2, "Synergie/Réponses automatiques": 1, "Synergie/À traiter": 3,
    }  # fmt: skip
    assert sorted(imap_account.subjects("Synergie/À traiter"))[1:] == [
        "Invitation refusée: Visite Économie positive", "Refusé: Visite de votre site",
    ]  # fmt: skip

    def state() -> dict[str, object]:
        with Session(engine) as session:
            contacts = {c.email: c for c in session.exec(select(Contact))}
            messages = {m.to_address: m.status for m in session.exec(select(Message))}
            visits = {v.uid: (v.status, v.partstat, v.notes) for v in session.exec(select(Visit))}
            opt_outs = [(o.contact_id, o.channel, o.source) for o in session.exec(select(OptOut))]
            journal = len(session.exec(select(MailboxMail)).all())
        return {
            "invalid": sorted(e for e, c in contacts.items() if c.email_invalid_at is not None),
            "messages": messages,
            "visits": visits,
            "opt_outs": opt_outs,
            "journal": journal,
            "p2": contacts["p2@example.org"].id,
        }

    with Session(engine) as session:
        p2_company = session.exec(
            select(Contact.company_id).where(Contact.email == "p2@example.org")
        ).one()

    after = state()
    # The permanent failure marks p0 (and only p0) invalid; the delay changes nothing.
    assert after["invalid"] == ["p0@example.org"]
    assert after["messages"]["p0@example.org"] == MessageStatus.BOUNCED  # type: ignore[index]
    assert after["messages"]["p1@example.org"] == MessageStatus.SENT  # type: ignore[index]
    # The mailto opted p2 out of e-mail, through the opt-out function, and nobody else.
    assert after["opt_outs"] == [(after["p2"], Channel.EMAIL, "mailto")]
    # … and the run reports it, for the synergie.contact.opted-out event the task emits.
    assert [(o.company_id, o.channel) for o in report.opt_outs] == [(p2_company, Channel.EMAIL)]
    # The invited contacts' answers are recorded; the strangers' DECLINED changed nothing.
    visits = after["visits"]
    assert visits[visit_a.uid][:2] == (VisitStatus.BOOKED, Partstat.ACCEPTED)  # type: ignore[index]
    assert visits[visit_a.uid][2].count(comment) == 1  # type: ignore[index]
    assert visits[visit_b.uid][:2] == (VisitStatus.BOOKED, Partstat.TENTATIVE)  # type: ignore[index]
    assert after["journal"] == 9

    # A second pass finds nothing to do and changes nothing.
    again = run(engine, settings)
    assert (again.handled, again.already_handled) == (0, 0)
    assert state() == after

    # Copies of mails already handled, put back in the inbox: filed again, never applied again.
    imap_account.append(mails["outlook"])
    imap_account.append(mails["unsubscribe"])
    third = run(engine, settings)
    assert (third.handled, third.already_handled, third.opt_outs) == (0, 2, [])
    assert state() == after
    assert folders(imap_account)["INBOX"] == 0
    assert folders(imap_account)["Synergie/Réponses"] == 3


class _CrashBeforeMove(ImapMailbox):
    """A run that dies right after its database commit, before the IMAP move."""

    def move(self, uid: int, outcome: MailOutcome) -> str:
        raise RuntimeError("killed between the commit and the move")


def test_a_run_killed_between_commit_and_move_never_applies_a_mail_twice(
    engine: sa.Engine, settings: Settings, imap_account: ImapAccount
) -> None:
    settings = with_imap(settings, imap_account)
    [(visit, invited), _] = book_two_visits(engine, settings)
    ics = reply_ics(uid=visit.uid, attendee=invited, partstat="ACCEPTED", start=visit.starts_at,
                    comment="Parking devant l'atelier", outlook=True)  # fmt: skip
    imap_account.append(outlook_reply(sender=invited, ics=ics))

    with pytest.raises(RuntimeError, match="killed"):
        run(engine, settings, box=_CrashBeforeMove)
    assert folders(imap_account)["INBOX"] == 1  # still there, but already applied

    report = run(engine, settings)
    assert (report.handled, report.already_handled) == (0, 1)
    assert folders(imap_account)["INBOX"] == 0 and folders(imap_account)["Synergie/Réponses"] == 1
    with Session(engine) as session:
        row = session.exec(select(Visit).where(Visit.uid == visit.uid)).one()
        assert row.partstat == Partstat.ACCEPTED
        assert (row.notes or "").count("Parking devant l'atelier") == 1
        [journal] = session.exec(select(MailboxMail)).all()
        assert journal.moved_at is not None and journal.outcome == MailOutcome.REPLIED


def test_a_dry_run_says_what_it_would_do_and_changes_nothing(
    sqlite_url: str, sqlite_settings: Settings, imap_account: ImapAccount
) -> None:
    from models.db import make_engine

    engine = make_engine(sqlite_url)
    settings = with_imap(sqlite_settings, imap_account)
    sent = send_first_mailing(engine, settings, people=1)
    imap_account.append(dsn(sent["p0@example.org"], recipient="p0@example.org"))
    imap_account.append(GARBAGE)
    report = run(engine, settings, dry_run=True)
    assert report.counts[MailOutcome.BOUNCED] == 1 and report.counts[MailOutcome.TO_REVIEW] == 1
    assert folders(imap_account) == {"INBOX": 2}
    with Session(engine) as session:
        assert session.exec(select(MailboxMail)).all() == []
        assert session.exec(select(col(Contact.email_invalid_at))).one() is None
    real = run(engine, settings)
    assert real.counts[MailOutcome.BOUNCED] == 1
    engine.dispose()


def test_what_staff_put_back_from_a_traiter_is_read_again(
    sqlite_url: str, sqlite_settings: Settings, imap_account: ImapAccount
) -> None:
    """An unsubscribe from an unknown address is for staff; once the contact exists, putting it back works."""
    from models.db import make_engine

    engine = make_engine(sqlite_url)
    settings = with_imap(sqlite_settings, imap_account)
    request = plain_mail(
        sender="nouveau@example.org", to="eit@example.org", subject="Désinscription"
    )
    imap_account.append(request)
    assert run(engine, settings).counts[MailOutcome.TO_REVIEW] == 1
    with session_scope(engine) as session:
        make_contact(session, make_company(session), email="nouveau@example.org")
    imap_account.append(request)  # staff moved it back into the inbox
    report = run(engine, settings)
    assert report.counts[MailOutcome.UNSUBSCRIBED] == 1 and report.already_handled == 0
    with Session(engine) as session:
        assert [o.source for o in session.exec(select(OptOut))] == ["mailto"]
        assert len(session.exec(select(MailboxMail)).all()) == 1
    engine.dispose()


def test_settings_and_login_problems_are_one_french_sentence(
    sqlite_settings: Settings, imap_account: ImapAccount
) -> None:
    with pytest.raises(MailboxSettingsError, match="SYNERGIE_IMAP_HOST"):
        ImapMailbox(sqlite_settings, password="x")
    plain_far = sqlite_settings.model_copy(
        update={"imap_host": "imap.example.org", "imap_user": "eit", "imap_security": "none"}
    )
    with pytest.raises(MailboxSettingsError, match="en clair"):
        ImapMailbox(plain_far, password="x")
    no_ca = plain_far.model_copy(
        update={"imap_security": "ssl", "imap_ca_file": Path("/nulle/part.pem")}
    )
    with pytest.raises(MailboxSettingsError, match="CA_FILE : fichier introuvable"):
        ImapMailbox(no_ca, password="x")
    settings = with_imap(sqlite_settings, imap_account)
    with (
        pytest.raises(MailboxSettingsError, match="refuse l'identifiant"),
        ImapMailbox(settings, password="not-the-password"),
    ):
        pass
    missing = settings.model_copy(update={"imap_folder": "Retours"})
    with (
        pytest.raises(MailboxSettingsError, match="« Retours » n'existe pas"),
        ImapMailbox(missing, password=imap_account.password),
    ):
        pass
    closed_port = settings.model_copy(update={"imap_port": 1})
    with (
        pytest.raises(MailboxSettingsError, match="injoignable"),
        ImapMailbox(closed_port, password=imap_account.password),
    ):
        pass


def test_folders_with_accents_are_created_once_in_modified_utf7(
    sqlite_url: str, sqlite_settings: Settings, imap_account: ImapAccount
) -> None:
    from models.db import make_engine

    engine = make_engine(sqlite_url)
    settings = with_imap(sqlite_settings, imap_account)
    for _ in range(2):  # the second pass finds them and creates nothing
        imap_account.append(GARBAGE)
        run(engine, settings)
    assert set(folders(imap_account)) == {
        "INBOX", "Synergie/Rejets", "Synergie/Retards", "Synergie/Désinscriptions",
        "Synergie/Réponses", "Synergie/Réponses automatiques", "Synergie/À traiter",
    }  # fmt: skip
    assert folders(imap_account)["Synergie/À traiter"] == 2
    engine.dispose()
    # On the wire the names are modified UTF-7 (RFC 3501 §5.1.3), as every client expects.
    client = imaplib.IMAP4(imap_account.host, imap_account.port, timeout=10)
    client.login(imap_account.user, imap_account.password)
    listed = b"\n".join(line for line in client.list()[1] if isinstance(line, bytes))
    client.logout()
    assert b'"Synergie/&AMA- traiter"' in listed and b"Synergie/R&AOk-ponses" in listed
    assert "À".encode() not in listed


def test_nothing_waiting_means_nothing_done(
    sqlite_url: str, sqlite_settings: Settings, imap_account: ImapAccount
) -> None:
    from models.db import make_engine

    engine = make_engine(sqlite_url)
    report = run(engine, with_imap(sqlite_settings, imap_account))
    assert (report.handled, report.already_handled, report.left) == (0, 0, 0)
    assert folders(imap_account) == {"INBOX": 0}
    engine.dispose()


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_by_default_checks_the_certificate(
    security: str, sqlite_url: str, sqlite_settings: Settings, imap_account: ImapAccount
) -> None:
    """IMAPS and STARTTLS work against the server's certificate, and refuse it when it is not trusted."""
    from models.db import make_engine

    assert Settings().imap_security == "ssl"  # TLS unless told otherwise
    port = imap_account.tls_port if security == "ssl" else imap_account.port
    untrusted = with_imap(sqlite_settings, imap_account).model_copy(
        update={"imap_security": security, "imap_port": port}
    )
    with (
        pytest.raises(MailboxSettingsError, match="certificat"),
        ImapMailbox(untrusted, password=imap_account.password),
    ):
        pass
    trusted = untrusted.model_copy(update={"imap_ca_file": imap_account.ca_file})
    imap_account.append(GARBAGE)
    engine = make_engine(sqlite_url)
    assert run(engine, trusted).counts[MailOutcome.TO_REVIEW] == 1
    engine.dispose()
    assert folders(imap_account)["Synergie/À traiter"] == 1
