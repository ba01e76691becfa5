"""The ``meeting-sync`` flow: what answers and referrals call for, started by their events and on a schedule.

An event (``synergie.invitation.answered``, ``synergie.referral.created``) names the meeting and
starts it at once; the schedule runs it over every open meeting, catching up whatever no event
started (no Prefect API, a restart). Everything it does is keyed in the database: twice is once.
"""

from __future__ import annotations

from prefect import flow

from models.enums import Channel
from synergie.settings import load_settings
from tasks.meetings import catch_up_meetings, send_waiting


@flow(name="meeting_sync")
def meeting_sync(
    meeting_id: int | None = None,
    company_id: int | None = None,
    contact_public_id: str | None = None,
    referral_id: int | None = None,
) -> dict[str, int]:
    """Promote waiting companies that fit, confirm answers, invite referred companies, send what waits.

    ``company_id``, ``contact_public_id`` and ``referral_id`` come from the event that started the
    run (they say why it runs); the whole meeting is caught up either way.
    """
    settings = load_settings()
    done = catch_up_meetings(settings=settings, meeting_id=meeting_id)
    sent = send_waiting(settings=settings, channel=Channel.EMAIL)
    return {**done, **{f"email_{name}": value for name, value in sent.items()}}


if __name__ == "__main__":
    meeting_sync()
