"""Fixtures for meeting tests: a planned meeting and visited companies to invite, on both databases."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from models import Contact, Meeting, Message, Registration, Stage
from synergie.meetings.planning import add_meeting
from synergie.messaging.rendering import MailTemplates
from synergie.settings import Settings
from tests.factories import NOW, make_company, make_contact

START = NOW + timedelta(days=30)


@dataclass
class Territory:
    """A meeting and the companies invited to it."""

    engine: sa.Engine
    settings: Settings
    templates: MailTemplates
    meeting_id: int
    companies: list[int]

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def meeting(self, session: Session) -> Meeting:
        meeting = session.get(Meeting, self.meeting_id)
        assert meeting is not None
        return meeting

    def registration(self, session: Session, company_id: int) -> Registration:
        return session.exec(
            select(Registration).where(
                Registration.meeting_id == self.meeting_id, Registration.company_id == company_id
            )
        ).one()

    def contact(self, session: Session, company_id: int) -> Contact:
        return session.exec(select(Contact).where(Contact.company_id == company_id)).first()  # type: ignore[return-value]

    def messages(self, step_part: str = "") -> list[Message]:
        with Session(self.engine) as session:
            rows = session.exec(select(Message).order_by(Message.id)).all()  # type: ignore[arg-type]
            return [m for m in rows if step_part in m.step]


def build_territory(
    engine: sa.Engine, settings: Settings, *, companies: int = 5, capacity: int = 4, per_company: int = 2,
    now: datetime = NOW,
) -> Territory:  # fmt: skip
    with Session(engine, expire_on_commit=False) as session:
        host = make_company(session, stage=Stage.VISITED, name="Tonnellerie Hôte", address="3 rue Jean Moulin",
                            commune="Nuits-Saint-Georges")  # fmt: skip
        make_contact(session, host, phone="+33639980100")
        ids = [host.id]
        for number in range(companies - 1):
            company = make_company(session, stage=Stage.VISITED, name=f"Atelier {number}")
            make_contact(session, company, phone=f"+336399801{number + 10:02d}")
            ids.append(company.id)
        # Not invited: not visited yet, or declined.
        make_contact(session, make_company(session, stage=Stage.CALLED))
        make_contact(session, make_company(session, stage=Stage.DECLINED))
        meeting = add_meeting(
            session=session, title="Rencontre d'avril", starts_at=START, now=now, domain="example.org",
            host=host, capacity=capacity, per_company=per_company,
        )  # fmt: skip
        session.commit()
        return Territory(engine, settings, MailTemplates(), meeting.id, ids)  # type: ignore[arg-type]


@pytest.fixture
def territory(engine: sa.Engine, settings: Settings) -> Territory:
    return build_territory(engine, settings)


@pytest.fixture
def make_territory(engine: sa.Engine, settings: Settings) -> Callable[..., Territory]:
    return lambda **kw: build_territory(engine, settings, **kw)
