"""Tables of the follow-up surveys: one survey per held meeting, who was invited, and each contact's answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.columns import UTCDateTime
from models.tables import utcnow


class Survey(SQLModel, table=True):
    """The follow-up survey of one meeting: its questions as they were when it opened, and when it closes.

    ``definition`` is the validated survey file, kept as it was: editing the file later changes
    the next surveys, never one already answered.
    """

    __table_args__ = (sa.UniqueConstraint("meeting_id", name="uq_survey_meeting"),)

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meeting.id")
    name: str = Field(max_length=100)  # the file's name, e.g. suivi-rencontre
    title: str = Field(max_length=300)
    definition: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    opened_at: datetime = Field(sa_type=UTCDateTime)
    closes_at: datetime = Field(sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SurveyRecipient(SQLModel, table=True):
    """One contact invited to a survey: when the invitation and the one reminder were queued."""

    __tablename__ = "survey_recipient"
    __table_args__ = (
        sa.UniqueConstraint("survey_id", "contact_id", name="uq_survey_recipient_contact"),
    )

    id: int | None = Field(default=None, primary_key=True)
    survey_id: int = Field(foreign_key="survey.id", index=True)
    contact_id: int = Field(foreign_key="contact.id")
    company_id: int = Field(foreign_key="company.id")
    invited_at: datetime = Field(sa_type=UTCDateTime)
    reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SurveyResponse(SQLModel, table=True):
    """A contact's answer to a survey: one per contact, updated in place, ``version`` counting the saves.

    A page carries the version it was shown with; a save from an older page is refused instead of
    overwriting a newer answer (two tabs, a back button).
    """

    __tablename__ = "survey_response"
    __table_args__ = (
        sa.UniqueConstraint("survey_id", "contact_id", name="uq_survey_response_contact"),
    )

    id: int | None = Field(default=None, primary_key=True)
    survey_id: int = Field(foreign_key="survey.id", index=True)
    contact_id: int = Field(foreign_key="contact.id")
    company_id: int = Field(foreign_key="company.id")
    answers: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    version: int = 1
    submitted_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
