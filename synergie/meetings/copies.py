"""Each company's own copy of a meeting's calendar entry: which SEQUENCE its next document carries.

Every company holds its own copy of the entry (same UID, itself as the only ATTENDEE). A
meeting-wide change (``reschedule``, ``cancel``) raises the meeting's SEQUENCE for every copy;
a company that withdraws, or that staff remove, gets a METHOD:CANCEL of its copy alone, which
must carry a SEQUENCE above the last REQUEST it received (RFC 5546 §2.1.5), and a REQUEST sent
to it afterwards (it says yes again, it is put back on the list) one above that CANCEL.
So each own-copy cancellation takes two numbers: the copy's SEQUENCE is the meeting's plus
twice the number of own-copy cancellations it received, and its k-th cancellation is sent at
the meeting's + 2k - 1. Both only grow, so every document a company receives supersedes the
one before. The cancellations are counted in the outbox (their step names the company), the
one record of what was sent: nothing else to keep in step.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlmodel import Session, col

from models.tables import Meeting, Message

__all__ = [
    "WITHDRAWAL_KIND",
    "cancel_sequence",
    "own_cancellations",
    "request_sequence",
    "withdrawal_step_prefix",
]

# The outbox step of an own-copy cancellation: reunion-<meeting>-retrait-<company>-v<version>.
WITHDRAWAL_KIND = "retrait"


def withdrawal_step_prefix(meeting_id: int, company_id: int | None = None) -> str:
    """Return the step prefix of the meeting's own-copy cancellations (of one company if given)."""
    prefix = f"reunion-{meeting_id}-{WITHDRAWAL_KIND}-"
    return prefix if company_id is None else f"{prefix}{company_id}-"


def own_cancellations(
    session: Session, meeting: Meeting, company_ids: Iterable[int] | None = None
) -> dict[int, int]:
    """Return, per company (those with any), how many own-copy cancellations the outbox holds for the meeting."""
    query = (
        sa.select(col(Message.company_id), sa.func.count(sa.distinct(col(Message.step))))
        .where(
            col(Message.campaign_id).is_(None),  # meeting messages belong to no campaign
            col(Message.step).startswith(withdrawal_step_prefix(meeting.id or 0)),
        )
        .group_by(col(Message.company_id))
    )
    wanted = None if company_ids is None else sorted(set(company_ids))
    if wanted is not None and len(wanted) <= 1000:
        query = query.where(col(Message.company_id).in_(wanted))
    found = {int(company): int(count) for company, count in session.execute(query) if company}
    if wanted is not None:
        return {company: found[company] for company in wanted if company in found}
    return found


def request_sequence(meeting: Meeting, cancellations: int) -> int:
    """Return the SEQUENCE of a REQUEST (or a meeting-wide CANCEL) for a copy cancelled ``cancellations`` times."""
    return meeting.sequence + 2 * cancellations


def cancel_sequence(meeting: Meeting, cancellations: int) -> int:
    """Return the SEQUENCE of the copy's next own cancellation (it had ``cancellations`` before)."""
    return meeting.sequence + 2 * cancellations + 1
