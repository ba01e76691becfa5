"""The suppression list: an opt-out outlives re-imports, on every channel and every flow (issue 9, item 1)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from channels.base import DeliveryResult
from channels.errors import RecipientOptedOutError
from models import (
    CallOutcome,
    CallTask,
    Campaign,
    Channel,
    Company,
    Contact,
    Message,
    MessageStatus,
    Stage,
    Suppression,
)
from models.companies import move_company
from models.db import session_scope, write_transaction
from synergie.calls.lists import companies_due_for_call
from synergie.listing.loader import import_listing
from synergie.listing.reading import ListingFilter
from synergie.mailing.campaigns import select_recipients
from synergie.messaging.optouts import (
    NotAnAddress,
    is_opted_out,
    lift_suppression,
    opt_out,
    opt_out_company,
    suppress,
)
from synergie.messaging.outbox import claim, record_delivery
from synergie.messaging.rendering import MailTemplates
from synergie.messaging.sending import enqueue_prepared, prepared_sms
from synergie.settings import Settings
from synergie.visits.lifecycle import add_staff, book_visit, due_reminders
from tests.factories import NOW, luhn_siret

S1, S2, S3 = (luhn_siret(n) for n in (901, 902, 903))
HEADER = (
    "siret;raison_sociale;code_naf;tranche_effectifs;adresse;code_postal;commune;code_commune;"
    "latitude;longitude;contact_nom;contact_fonction;courriel;telephone\n"
)
STEP = "premier-courrier"


def load(engine: sa.Engine, tmp_path: Path, name: str, lines: str) -> None:
    path = tmp_path / name
    path.write_text(HEADER + lines, encoding="utf-8")
    report = import_listing(
        engine=engine, path=path, listing_filter=ListingFilter(), rejects_dir=tmp_path / "rejets",
        now=NOW,
    )  # fmt: skip
    assert report.rejected == 0


def contacts_with(engine: sa.Engine, **where: str) -> list[Contact]:
    with Session(engine) as session:
        query = select(Contact).order_by(col(Contact.id))
        for name, value in where.items():
            query = query.where(getattr(Contact, name) == value)
        return list(session.exec(query))


def recipients(engine: sa.Engine) -> list[str]:
    with Session(engine) as session:
        campaign = session.exec(select(Campaign)).first()
        if campaign is None:
            campaign = Campaign(name="Pays de Nuits", year=2026, communes=["21464"])
            session.add(campaign)
            session.commit()
            session.refresh(campaign)
    with engine.connect() as connection:
        found = select_recipients(connection, campaign=campaign, step=STEP)
    return [f"{r.company_name} <{r.email}>" for r in found]


def stop_everything(engine: sa.Engine, email: str) -> None:
    """What the portal's "ne plus être contacté du tout" button does for the contact at ``email``."""
    with session_scope(engine) as session:
        contact = session.exec(select(Contact).where(Contact.email == email)).one()
        opt_out_company(session=session, contact=contact, source="portal", now=NOW)


def test_an_opt_out_survives_a_reimport_without_siret_and_a_second_site(
    engine: sa.Engine, tmp_path: Path
) -> None:
    # Issue 9, item 1, as reproduced: a contact opted out of everything through the portal;
    # a later listing brought the same company without its SIRET and a second site with the
    # same address; both were selected for the next mailing.
    load(engine, tmp_path, "liste-1.csv",
         f"{S1};Cartonnages de la Vouge;17.21A;11;;21700;Nuits-Saint-Georges;21464;;;Claire Martin;"
         "Gérante;c.martin@example.org;06 39 98 10 01\n")  # fmt: skip
    assert recipients(engine) == ["Cartonnages de la Vouge <c.martin@example.org>"]
    stop_everything(engine, "c.martin@example.org")
    load(engine, tmp_path, "liste-2.csv",
         ";Cartonnages de la Vouge;17.21A;11;;21700;Nuits-Saint-Georges;21464;;;Claire Martin;"
         "Gérante;C.Martin@Example.org;\n"
         f"{S2};Cartonnages de la Vouge (dépôt);17.21A;11;;21700;Nuits-Saint-Georges;21464;;;;;"
         "c.martin@example.org;\n")  # fmt: skip

    with Session(engine) as session:
        companies = session.exec(select(Company).order_by(col(Company.id))).all()
    assert sorted((c.siret or "", c.stage) for c in companies) == sorted(
        [(S1, Stage.OPTED_OUT), ("", Stage.LISTED), (S2, Stage.LISTED)]
    )
    assert len(contacts_with(engine, email="c.martin@example.org")) == 3  # three rows, one person
    assert recipients(engine) == []


def test_a_contact_first_known_by_phone_keeps_its_sms_opt_out_once_known_by_email(
    engine: sa.Engine, tmp_path: Path
) -> None:
    load(engine, tmp_path, "liste-1.csv",
         f"{S3};Menuiserie Morel;16.23Z;03;;21700;Nuits-Saint-Georges;21464;;;Jean Morel;;;"
         "06 39 98 10 02\n")  # fmt: skip
    [first] = contacts_with(engine, phone="+33639981002")
    with session_scope(engine) as session:
        row = session.get(Contact, first.id)
        opt_out(session=session, contact=row, channels=[Channel.SMS], source="portal", now=NOW)  # type: ignore[arg-type]
    load(engine, tmp_path, "liste-2.csv",
         f"{S3};Menuiserie Morel;16.23Z;03;;21700;Nuits-Saint-Georges;21464;;;Jean Morel;;"
         "j.morel@example.org;06.39.98.10.02\n")  # fmt: skip
    [_, second] = contacts_with(engine, phone="+33639981002")
    assert second.id != first.id and second.email == "j.morel@example.org"

    with Session(engine) as session:
        assert is_opted_out(session=session, contact_id=second.id, channel=Channel.SMS)  # type: ignore[arg-type]
        # Only SMS was refused: e-mail to the same person is still allowed.
        assert not is_opted_out(session=session, contact_id=second.id, channel=Channel.EMAIL)  # type: ignore[arg-type]
    # An SMS queued for the new row is cancelled at claim, never sent.
    with write_transaction(engine) as connection:
        enqueue_prepared(
            connection, step="rappel-visite-x-2026-11-04", recipient=f"contact:{second.id}",
            channel=Channel.SMS, to_address="+33639981002", content=prepared_sms("Rappel"),
            domain="example.org", now=NOW, contact_id=second.id,
        )  # fmt: skip
        assert claim(connection, campaign_id=None, step=None, channel=Channel.SMS, limit=10,
                     now=NOW, lease=timedelta(minutes=5), claimed_by="t") == []  # fmt: skip
    with Session(engine) as session:
        assert session.exec(select(Message.status)).one() == MessageStatus.CANCELLED


def test_a_contact_opted_out_once_receives_nothing_afterwards_through_any_flow(
    engine: sa.Engine, settings: Settings, tmp_path: Path
) -> None:
    """Mailing, call lists and their digests, visit invitations and reminders, the outbox: after an import."""
    load(engine, tmp_path, "liste-1.csv",
         f"{S1};Cartonnages de la Vouge;17.21A;11;;21700;Nuits-Saint-Georges;21464;;;Claire Martin;"
         "Gérante;c.martin@example.org;06 39 98 10 01\n")  # fmt: skip
    stop_everything(engine, "c.martin@example.org")
    # The same person comes back on a new company row (no SIRET), e-mail and mobile.
    load(engine, tmp_path, "liste-2.csv",
         ";Cartonnages de la Vouge;17.21A;11;;21700;Nuits-Saint-Georges;21464;;;Claire Martin;"
         "Gérante;c.martin@example.org;+33 6 39 98 10 01\n")  # fmt: skip
    [_, again] = contacts_with(engine, email="c.martin@example.org")
    assert again.phone == "+33639981001"

    assert recipients(engine) == []  # mailing
    with session_scope(engine) as session:  # calls: the company is due, nobody to call there
        company = session.get(Company, again.company_id)
        move_company(session=session, company=company, target=Stage.CONTACTED, why="t",  # type: ignore[arg-type]
                     actor="t", now=NOW - timedelta(days=30))  # fmt: skip
        today = NOW.date() + timedelta(days=1)
        assert companies_due_for_call(session=session, today=today, after_days=7) == []
    with session_scope(engine) as session:  # visits: booked by staff, no invitation, no reminder
        add_staff(session=session, name="Claire Morel", email="eit@example.org")
        company = session.get(Company, again.company_id)
        move_company(session=session, company=company, target=Stage.CALLED, why="t", actor="t",  # type: ignore[arg-type]
                     now=NOW)  # fmt: skip
        session.add(CallTask(company_id=again.company_id, contact_id=again.id, due_on=date(2026, 10, 30),
                             outcome=CallOutcome.INTERESTED, logged_at=NOW))  # fmt: skip
        booked = book_visit(session=session, settings=settings, templates=MailTemplates(),
                            company=company, now=NOW, actor="t")  # type: ignore[arg-type]  # fmt: skip
        assert booked.visit.contact_id == again.id and not booked.enqueued
        day = booked.visit.starts_at.astimezone(settings.tz).date()
        assert due_reminders(session=session, settings=settings, day=day) == []
    with Session(engine) as session:
        assert session.exec(select(Message)).all() == []


def test_a_carrier_stop_suppresses_the_number_whoever_it_belongs_to(engine: sa.Engine) -> None:
    # A caller's digest (no contact row) answered STOP: the number is suppressed all the same.
    def queue(step: str) -> None:
        enqueue_prepared(
            connection, step=step, recipient="caller:1", channel=Channel.SMS,
            to_address="+33639981001", content=prepared_sms("Vos appels"), domain="example.org",
            now=NOW,
        )  # fmt: skip

    def take() -> list:  # type: ignore[type-arg]
        return claim(connection, campaign_id=None, step=None, channel=Channel.SMS, limit=10,
                     now=NOW, lease=timedelta(minutes=5), claimed_by="t")  # fmt: skip

    with write_transaction(engine) as connection:
        queue("appels-2026-11-02")
        [message] = take()
        stop = RecipientOptedOutError("unsubscribed", code=21610)
        record_delivery(connection, message, DeliveryResult(key=message.key, error=stop), now=NOW,
                        max_attempts=3, retry_base=timedelta(minutes=1), actor="t")  # fmt: skip
        queue("appels-2026-11-03")
        assert take() == []
    with Session(engine) as session:
        [row] = session.exec(select(Suppression)).all()
        assert (row.address, row.channel, row.source) == ("+33639981001", "sms", "sms-stop")


def test_suppress_normalises_refuses_nonsense_and_only_staff_lift_it(engine: sa.Engine) -> None:
    with write_transaction(engine) as connection:
        assert suppress(connection, address=" C.Martin@Example.ORG ", channel="email",
                        source="staff", now=NOW, actor="staff:test")  # fmt: skip
        assert not suppress(connection, address="c.martin@example.org", channel="email",
                            source="mailto", now=NOW, actor="mailbox")  # fmt: skip
        assert suppress(connection, address="06 39 98 10 01", channel="sms", source="staff",
                        now=NOW, actor="staff:test")  # fmt: skip
        with pytest.raises(NotAnAddress, match="ne s'applique pas"):
            suppress(connection, address="06 39 98 10 01", channel="email", source="staff",
                     now=NOW, actor="staff:test")  # fmt: skip
        with pytest.raises(NotAnAddress, match="illisible|invalide"):
            suppress(connection, address="pas un numéro", channel="all", source="staff",
                     now=NOW, actor="staff:test")  # fmt: skip
        with pytest.raises(ValueError, match="pourquoi"):
            lift_suppression(connection, address="+33639981001", channel=None, why=" ",
                             actor="staff:test", now=NOW)  # fmt: skip
        [lifted] = lift_suppression(connection, address="0639981001", channel=None,
                                    why="nouvelle demande écrite", actor="staff:test", now=NOW)  # fmt: skip
        assert lifted.address == "+33639981001"
        # Lifted, the row stays as the record; the number may be suppressed again later.
        assert suppress(connection, address="+33639981001", channel="sms", source="sms-stop",
                        now=NOW, actor="carrier")  # fmt: skip
    with Session(engine) as session:
        rows = session.exec(select(Suppression).order_by(col(Suppression.id))).all()
    assert [(r.address, r.channel, r.lifted_why) for r in rows] == [
        ("c.martin@example.org", "email", None),
        ("+33639981001", "sms", "nouvelle demande écrite"),
        ("+33639981001", "sms", None),
    ]
