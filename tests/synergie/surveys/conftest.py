"""Fixtures for survey tests: a meeting held, its attending companies' contacts, on both databases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from models import Answer, Company, Contact, Meeting, Message
from synergie.meetings.attendance import record_attendance
from synergie.meetings.planning import open_registrations
from synergie.meetings.registrations import lock_meeting, record_answer
from synergie.messaging.rendering import MailTemplates
from synergie.settings import Settings
from synergie.surveys.outreach import run_meeting_survey
from tests.factories import make_contact
from tests.synergie.meetings.conftest import START, build_territory

HELD_AT = START + timedelta(hours=3)


@dataclass
class Held:
    """A held meeting: who came (three companies, one with two contacts), who did not."""

    engine: sa.Engine
    settings: Settings
    templates: MailTemplates
    meeting_id: int
    came: list[int]
    absent: list[int]

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def contacts(self, company_id: int) -> list[Contact]:
        with self.session() as session:
            return list(
                session.exec(
                    select(Contact).where(Contact.company_id == company_id).order_by(Contact.id)  # type: ignore[arg-type]
                )
            )

    def messages(self, part: str = "questionnaire-") -> list[Message]:
        with self.session() as session:
            rows = session.exec(select(Message).order_by(Message.id)).all()  # type: ignore[arg-type]
            return [m for m in rows if part in m.step]

    def run(self, now: datetime) -> object:
        """One pass of the survey logic for the meeting, in its own write transaction."""
        from models.db import write_transaction

        with write_transaction(self.engine) as connection:
            session = Session(bind=connection, expire_on_commit=False)
            run = run_meeting_survey(
                session=session, settings=self.settings, templates=self.templates,
                meeting_id=self.meeting_id, now=now,
            )  # fmt: skip
            session.flush()
            session.close()
        return run


def build_held(engine: sa.Engine, settings: Settings, *, held_at: datetime = HELD_AT) -> Held:
    """Four companies registered; three came (the first with a second contact), one did not."""
    territory = build_territory(engine, settings, companies=5, capacity=10, per_company=2)
    ids = territory.companies
    with Session(engine, expire_on_commit=False) as session:
        first = session.get(Company, ids[1])
        assert first is not None
        make_contact(session, first, name="Second Contact")
        session.commit()
    with Session(engine, expire_on_commit=False) as session:
        lock_meeting(session, territory.meeting_id)
        meeting = session.get(Meeting, territory.meeting_id)
        assert meeting is not None
        companies = [session.get(Company, i) for i in ids[1:5]]
        registrations = open_registrations(session=session, meeting=meeting,
                                           companies=companies, now=held_at - timedelta(days=20))  # type: ignore[arg-type]  # fmt: skip
        for registration in registrations:
            record_answer(session=session, meeting=meeting, registration=registration,
                          answer=Answer.REGISTERED, people=1, note=None, contact_id=None,
                          now=held_at - timedelta(days=10))  # fmt: skip
        session.commit()
    came, absent = ids[1:4], ids[4:5]
    with Session(engine, expire_on_commit=False) as session:
        meeting = session.get(Meeting, territory.meeting_id)
        record_attendance(session=session, meeting=meeting, present_company_ids=came,  # type: ignore[arg-type]
                          now=held_at, actor="staff:test", hours=10, timezone=settings.timezone)  # fmt: skip
        session.commit()
    return Held(engine, settings, MailTemplates(), territory.meeting_id, came, absent)


@pytest.fixture
def held(engine: sa.Engine, settings: Settings) -> Held:
    return build_held(engine, settings)
