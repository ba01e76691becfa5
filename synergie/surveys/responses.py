"""A contact's answer to a survey: one per contact and survey, updated in place, never overwritten by an older page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from models.surveys import Survey, SurveyResponse
from models.tables import Contact
from synergie.surveys.outreach import SurveyError, is_open

__all__ = ["SavedResponse", "StaleAnswer", "SurveyClosed", "find_response", "save_response"]

RESPONSE = SurveyResponse.__table__  # type: ignore[attr-defined]


class SurveyClosed(SurveyError):
    """The survey takes no more answers."""

    def __init__(self) -> None:
        super().__init__("Ce questionnaire est clos : il ne reçoit plus de réponses.")


class StaleAnswer(SurveyError):
    """The page was shown before the answer last saved: saving it would overwrite that answer unseen."""

    def __init__(self, current: SurveyResponse | None) -> None:
        super().__init__(
            "Une autre réponse a été enregistrée depuis l'ouverture de cette page (dans un autre "
            "onglet, peut-être) : rien n'a été remplacé."
        )
        self.current = current


@dataclass(frozen=True, slots=True)
class SavedResponse:
    """What a save did: the version now stored, and whether it replaced an earlier answer."""

    version: int
    updated: bool


def find_response(session: Session, *, survey_id: int, contact_id: int) -> SurveyResponse | None:
    return session.exec(
        select(SurveyResponse).where(
            SurveyResponse.survey_id == survey_id, SurveyResponse.contact_id == contact_id
        )
    ).first()


def save_response(
    *, session: Session, survey: Survey, contact: Contact, answers: dict[str, Any],
    expected_version: int, now: datetime,
) -> SavedResponse:  # fmt: skip
    """Store the contact's answers: the first (``expected_version`` 0) or a new version of the one shown.

    The check is in the statement itself (an insert that yields to an existing row, an update
    conditional on the version shown), so two tabs saving at once cannot both win; the loser
    gets StaleAnswer with the answer that won. A closed survey raises SurveyClosed.
    """
    if not is_open(survey, now):
        raise SurveyClosed()
    if expected_version <= 0:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        inserted = session.execute(
            dialect.insert(RESPONSE)
            .values(survey_id=survey.id, contact_id=contact.id, company_id=contact.company_id,
                    answers=answers, version=1, submitted_at=now, updated_at=now)
            .on_conflict_do_nothing(index_elements=["survey_id", "contact_id"])
            .returning(RESPONSE.c.id)
        ).scalar_one_or_none()  # fmt: skip
        # RETURNING, not rowcount: psycopg reports -1 for an INSERT … ON CONFLICT.
        if inserted is None:
            raise StaleAnswer(_current(session, survey, contact))
        return SavedResponse(1, False)
    updated = session.execute(
        sa.update(RESPONSE)
        .where(RESPONSE.c.survey_id == survey.id, RESPONSE.c.contact_id == contact.id,
               RESPONSE.c.version == expected_version)
        .values(answers=answers, version=expected_version + 1, updated_at=now)
    )  # fmt: skip
    if updated.rowcount != 1:  # type: ignore[attr-defined]
        raise StaleAnswer(_current(session, survey, contact))
    return SavedResponse(expected_version + 1, True)


def _current(session: Session, survey: Survey, contact: Contact) -> SurveyResponse | None:
    session.expire_all()
    return find_response(session, survey_id=survey.id, contact_id=contact.id)  # type: ignore[arg-type]


def response_count(session: Session, survey_id: int) -> int:
    return int(
        session.exec(
            select(sa.func.count()).select_from(SurveyResponse).where(
                col(SurveyResponse.survey_id) == survey_id
            )
        ).one()
    )  # fmt: skip
