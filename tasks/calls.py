"""Tasks of the call reminders: assign today's calls, enqueue the callers' digests, send them, log a call."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from sqlmodel import Session

from models.companies import get_company_by_siret
from models.db import require_schema, session_scope
from models.enums import CallOutcome, Channel
from models.tables import Caller, CallTask
from synergie import french
from synergie.calls.lists import (
    CallerDigest,
    assign_calls,
    call_link_expiry,
    caller_digest,
    digest_step,
    todays_calls,
)
from synergie.calls.outcomes import log_call
from synergie.mailing.campaigns import sender_domain
from synergie.messaging.links import CallLink, call_log_url
from synergie.messaging.rendering import SmsTemplates, programme_context
from synergie.messaging.sending import enqueue_prepared, prepared_email, prepared_sms
from synergie.settings import Settings
from tasks.mailing import templates_for
from tasks.runtime import engine_for

TWILIO_TOKEN_BLOCK = "synergie-twilio-auth-token"
# A day's digests are a handful of messages: one batch per channel sends them all.
SEND_LIMIT = 1000


@functools.cache
def _sms_templates(override_dir: Path | None) -> SmsTemplates:
    return SmsTemplates(override_dir)


@dataclass(frozen=True)
class DigestCount:
    """What one caller gets today."""

    caller: str
    calls: int
    sms: bool
    email: bool


def digests_for(
    session: Session, settings: Settings, day: date
) -> list[tuple[Caller, CallerDigest]]:
    """The digest of every caller with calls assigned for ``day``."""
    result = []
    expires_at = call_link_expiry(day, settings.call_link_days, settings.tz)

    def log_link(task: CallTask) -> str:
        link = CallLink(task.id, task.caller_id, task.company_id)  # type: ignore[arg-type]
        return call_log_url(settings, link, expires_at=expires_at)

    for caller_id, tasks in sorted(todays_calls(session=session, today=day).items()):
        caller = session.get(Caller, caller_id)
        digest = caller is not None and caller_digest(
            session=session, caller=caller, tasks=tasks, today=day,
            programme=programme_context(settings), mail_templates=templates_for(settings),
            sms_templates=_sms_templates(settings.templates_dir), tz=settings.tz,
            log_link=log_link,
        )  # fmt: skip
        if caller is not None and digest:
            result.append((caller, digest))
    return result


@task(name="assign-calls", cache_policy=NO_CACHE)
def assign_todays_calls(
    *, settings: Settings, day: date, after_days: int, dry_run: bool
) -> list[DigestCount]:
    """Share the day's calls among callers (rolled back in a dry run); return each caller's count."""
    engine = engine_for(settings.db_url)
    require_schema(engine)
    with Session(engine, expire_on_commit=False) as session:
        assigned = assign_calls(
            session=session, today=day, after_days=after_days, now=datetime.now(UTC), tz=settings.tz
        )
        digests = digests_for(session, settings, day)
        counts = [
            DigestCount(caller.name, digest.count, bool(caller.phone), bool(caller.email))
            for caller, digest in digests
        ]
        if dry_run:
            session.rollback()
        else:
            session.commit()
    get_run_logger().info(
        "%d new calls assigned for %s; %d callers have calls%s",
        sum(len(v) for v in assigned.values()), day, len(counts), " (dry run)" if dry_run else "",
    )  # fmt: skip
    create_table_artifact(
        key="call-reminders",
        table=[
            {"appelant": c.caller, "appels": c.calls, "sms": c.sms, "e-mail": c.email}
            for c in counts
        ]
        or [{"appelant": "aucun appel aujourd'hui", "appels": 0, "sms": False, "e-mail": False}],
        description=f"Appels du {french.short_date(day)}" + (" (essai à blanc)" if dry_run else ""),
    )
    return counts


@task(name="enqueue-caller-digests", cache_policy=NO_CACHE)
def enqueue_caller_digests(*, settings: Settings, day: date) -> int:
    """Put each caller's SMS and e-mail of the day in the outbox, once per day; return how many are new."""
    engine = engine_for(settings.db_url)
    now = datetime.now(UTC)
    step = digest_step(day)
    added = 0
    with session_scope(engine) as session:
        digests = digests_for(session, settings, day)
        connection = session.connection()
        for caller, digest in digests:
            recipient = f"caller:{caller.id}"
            if caller.phone:
                added += enqueue_prepared(
                    connection, step=step, recipient=recipient, channel=Channel.SMS,
                    to_address=caller.phone, content=prepared_sms(digest.sms),
                    domain=sender_domain(settings), now=now,
                )  # fmt: skip
            if caller.email:
                email = digest.email
                added += enqueue_prepared(
                    connection, step=step, recipient=recipient, channel=Channel.EMAIL,
                    to_address=caller.email,
                    content=prepared_email(subject=email.subject, text=email.text, html=email.html,
                                           to_name=caller.name),
                    domain=sender_domain(settings), now=now,
                )  # fmt: skip
    get_run_logger().info("%d new digest messages for step %r", added, step)
    return added


@task(name="find-company", cache_policy=NO_CACHE)
def find_company_name(*, settings: Settings, siret: str) -> str:
    """The name of the company with this SIRET (CompanyNotFound otherwise), before pausing."""
    engine = engine_for(settings.db_url)
    require_schema(engine)
    with session_scope(engine) as session:
        return get_company_by_siret(session=session, siret=siret).name


@task(name="apply-call-outcome", cache_policy=NO_CACHE)
def apply_call_outcome(
    *,
    settings: Settings,
    siret: str,
    outcome: CallOutcome,
    on: date | None,
    notes: str | None,
    actor: str,
) -> dict[str, str]:
    """Log the call for the company with this SIRET; return its outcome and new stage."""
    engine = engine_for(settings.db_url)
    with session_scope(engine) as session:
        company = get_company_by_siret(session=session, siret=siret)
        logged = log_call(
            session=session, company=company, outcome=outcome, on=on, notes=notes, actor=actor,
            now=datetime.now(UTC), call_minutes=settings.call_minutes, tz=settings.tz,
        )  # fmt: skip
        result = {"company": company.name, "outcome": outcome.value, "stage": logged.stage.value}
        if logged.next_task is not None:
            result["next_call"] = logged.next_task.due_on.isoformat()
    get_run_logger().info("call logged for %s: %s", siret, result)
    return result
