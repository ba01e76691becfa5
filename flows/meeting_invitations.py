"""The ``meeting-invitations`` flow: invite every company on a meeting's list, each contact with a calendar request."""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel, Field

from models.enums import Channel
from synergie.settings import load_settings
from tasks.meetings import invite_to_meeting, send_waiting


class MeetingInvitationsParams(BaseModel):
    """La rencontre à laquelle inviter. Par défaut, un essai à blanc qui compte les invitations."""

    meeting_id: int = Field(
        title="Rencontre", ge=1, description="Numéro de la rencontre (synergie meetings list)"
    )
    dry_run: bool = Field(
        title="Essai à blanc",
        default=True,
        description="Essai à blanc : compter les invitations, ne rien écrire ni envoyer",
    )


@flow(name="meeting_invitations")
def meeting_invitations(params: MeetingInvitationsParams) -> dict[str, int]:
    """Queue the invitations of the meeting (once per contact and version), then send what waits in the outbox."""
    settings = load_settings()
    invited = invite_to_meeting(
        settings=settings, meeting_id=params.meeting_id, dry_run=params.dry_run
    )
    if params.dry_run:
        return {f"would_{name}": value for name, value in invited.items()}
    sent = send_waiting(settings=settings, channel=Channel.EMAIL)
    return {**invited, **{f"email_{name}": value for name, value in sent.items()}}


if __name__ == "__main__":
    import sys

    meeting_invitations(MeetingInvitationsParams(meeting_id=int(sys.argv[1]), dry_run=False))
