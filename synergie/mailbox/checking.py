"""One pass over the watched folder: read each mail, act on it once, move it where it belongs.

For each mail, in one database transaction: its effect (``apply_mail``) and its journal row
(keyed on the SHA-256 of its bytes); then, once committed, the IMAP move. A run that dies
between the commit and the move leaves the mail in the folder with its journal row: the next
run finds the row, moves the mail without applying it again. Two runs at once cannot both
commit the same mail (the journal's unique key). A mail whose journal says « à traiter » and
that staff moved back into the folder is read again: nothing was applied the first time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from models.enums import MailOutcome
from synergie.mailbox.applying import (
    Handled,
    MeetingAnswered,
    NewOptOut,
    apply_mail,
    find_handled,
    record_handled,
)
from synergie.mailbox.imap import FOLDERS, ImapMailbox
from synergie.mailbox.reading import mail_digest, read_mail
from synergie.messaging.rendering import MailTemplates
from synergie.settings import Settings

__all__ = ["MailboxReport", "check_mailbox"]

logger = logging.getLogger(__name__)

# French names of the outcomes, for staff (CLI, Prefect artifact).
OUTCOME_LABELS: dict[MailOutcome, str] = {
    MailOutcome.BOUNCED: "rejets (adresse marquée invalide)",
    MailOutcome.DELAYED: "retards (rien à faire)",
    MailOutcome.UNSUBSCRIBED: "désinscriptions",
    MailOutcome.REPLIED: "réponses d'agenda enregistrées",
    MailOutcome.AUTO_REPLY: "réponses automatiques ignorées",
    MailOutcome.TO_REVIEW: "à traiter par l'équipe",
}


@dataclass
class MailboxReport:
    """What one pass did: mails per outcome, mails moved without being applied again, mails left."""

    counts: dict[MailOutcome, int] = field(default_factory=lambda: dict.fromkeys(MailOutcome, 0))
    already_handled: int = 0
    left: int = 0
    dry_run: bool = False
    lines: list[dict[str, str]] = field(default_factory=list)
    opt_outs: list[NewOptOut] = field(default_factory=list)  # committed, for the opted-out events
    # Committed meeting answers, for the synergie.invitation.answered events (as the portal's).
    meeting_answers: list[MeetingAnswered] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, int]:
        """The counts by outcome value, plus ``already_handled`` and ``left``."""
        return {
            **{outcome.value: n for outcome, n in self.counts.items()},
            "already_handled": self.already_handled,
            "left": self.left,
        }

    def table(self) -> list[dict[str, str]]:
        """One row per outcome (French), for a Prefect table artifact or the CLI."""
        rows = [
            {"courriels": OUTCOME_LABELS[o], "nombre": str(n), "dossier": FOLDERS[o]}
            for o, n in self.counts.items()
        ]
        rows.append(
            {"courriels": "déjà traités (seulement rangés)", "nombre": str(self.already_handled),
             "dossier": ""}
        )  # fmt: skip
        rows.append({"courriels": "restant pour le passage suivant", "nombre": str(self.left),
                     "dossier": ""})  # fmt: skip
        return rows


def _is_database_failure(exc: BaseException) -> bool:
    """Whether the database itself failed (stop the run) rather than this mail (put it aside)."""
    return isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError | sa.exc.InternalError)


def check_mailbox(
    *,
    engine: sa.Engine,
    settings: Settings,
    templates: MailTemplates,
    mailbox: ImapMailbox,
    now: Callable[[], datetime],
    actor: str,
    limit: int = 500,
    dry_run: bool = False,
) -> MailboxReport:
    """Handle up to ``limit`` mails waiting in the open ``mailbox``; return what became of them.

    ``dry_run`` reads and applies each mail in a transaction that is rolled back, and moves
    nothing: it says what a real pass would do.
    """
    report = MailboxReport(dry_run=dry_run)
    waiting = mailbox.waiting()
    report.left = max(len(waiting) - limit, 0)
    if not waiting:
        return report
    if not dry_run:
        mailbox.ensure_folders()
    for fetched in mailbox.fetch(waiting[:limit]):
        digest = mail_digest(fetched.raw)
        moment = now()
        with Session(engine, expire_on_commit=False) as session:
            previous = find_handled(session=session, digest=digest)
            if previous is not None and previous.outcome != MailOutcome.TO_REVIEW:
                report.already_handled += 1
                if not dry_run:
                    mailbox.move(fetched.uid, previous.outcome)
                    previous.moved_at = moment
                    session.add(previous)
                    session.commit()
                continue
            mail = read_mail(fetched.raw)
            try:
                if previous is not None:  # staff put an « à traiter » mail back: read it again
                    session.delete(previous)
                    session.flush()
                handled = apply_mail(
                    session=session, settings=settings, templates=templates, mail=mail,
                    now=moment, actor=actor,
                )  # fmt: skip
                row = record_handled(
                    session=session, digest=digest, mail=mail, folder=mailbox.folder,
                    uidvalidity=mailbox.uidvalidity, uid=fetched.uid, handled=handled,
                    moved_to=mailbox.folder_for(handled.outcome), now=moment,
                )  # fmt: skip
                if dry_run:
                    session.rollback()
                else:
                    session.commit()
            except sa.exc.IntegrityError:
                # Another run committed this mail meanwhile: it is that run's to move.
                session.rollback()
                logger.info("mail uid %s handled by another run meanwhile", fetched.uid)
                continue
            except Exception as exc:
                session.rollback()
                if _is_database_failure(exc):
                    raise  # the mail stays in the folder for the next run
                # A mail that trips a bug must not block the mailbox: it goes to staff, noted.
                logger.exception("mail uid %s could not be applied", fetched.uid)
                handled = Handled(
                    MailOutcome.TO_REVIEW, f"erreur en traitant ce courriel : {type(exc).__name__}"
                )
                if not dry_run:
                    stale = find_handled(session=session, digest=digest)
                    if stale is not None:
                        session.delete(stale)
                        session.flush()
                    row = record_handled(
                        session=session, digest=digest, mail=mail, folder=mailbox.folder,
                        uidvalidity=mailbox.uidvalidity, uid=fetched.uid, handled=handled,
                        moved_to=mailbox.folder_for(handled.outcome), now=moment,
                    )  # fmt: skip
                    session.commit()
            report.counts[handled.outcome] += 1
            if len(report.lines) < 200:
                report.lines.append(
                    {"uid": str(fetched.uid), "objet": mail.subject[:120],
                     "résultat": FOLDERS[handled.outcome], "détail": handled.detail[:300]}
                )  # fmt: skip
            logger.info("mail uid %s: %s (%s)", fetched.uid, handled.outcome.value, handled.detail)
            if dry_run:
                continue
            report.opt_outs.extend(handled.opt_outs)
            report.meeting_answers.extend(handled.meeting_answers)
            mailbox.move(fetched.uid, handled.outcome)
            row.moved_at = now()
            session.add(row)
            session.commit()
    return report
