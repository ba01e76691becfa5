"""Tasks of the visit flows: book and queue invitations, queue reminders, send prepared messages."""

from __future__ import annotations

from datetime import UTC, date, datetime

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from sqlmodel import Session

from models.companies import get_company_by_siret
from models.db import require_schema, session_scope
from models.tables import Company
from synergie import french
from synergie.inventory.questionnaire import invite_to_inventory
from synergie.messaging.rendering import SmsTemplates
from synergie.settings import Settings
from synergie.visits.lifecycle import (
    BookedVisit,
    book_interested,
    book_visit,
    close_visit,
    due_reminders,
    enqueue_reminders,
    find_visit,
)
from tasks.mailing import templates_for
from tasks.runtime import current_actor, engine_for

SEND_LIMIT = 1000


def _row(booked: BookedVisit, settings: Settings) -> dict[str, str]:
    return {
        "entreprise": booked.company,
        "visite": french.short_moment(booked.visit.starts_at, settings.tz),
        "invitation": "en file" if booked.enqueued else "non envoyée (pas d'e-mail joignable)",
    }


@task(name="book-visits", cache_policy=NO_CACHE)
def book_visits(
    *, settings: Settings, company_siret: str | None, slot: datetime | None, dry_run: bool
) -> list[dict[str, str]]:
    """Book visits (one company, or every interested one) and queue their invitations; roll back on a dry run."""
    engine = engine_for(settings.db_url)
    require_schema(engine)
    now = datetime.now(UTC)
    actor = current_actor()
    templates = templates_for(settings)
    with Session(engine, expire_on_commit=False) as session:
        if company_siret:
            company = get_company_by_siret(session=session, siret=company_siret.replace(" ", ""))
            booked = [
                book_visit(
                    session=session,
                    settings=settings,
                    templates=templates,
                    company=company,
                    now=now,
                    actor=actor,
                    visit_start=slot,
                )  # fmt: skip
            ]
        else:
            booked = book_interested(
                session=session, settings=settings, templates=templates, now=now, actor=actor
            )
        rows = [_row(item, settings) for item in booked]
        if dry_run:
            session.rollback()
        else:
            session.commit()
    create_table_artifact(
        key="visits-booked",
        table=rows or [{"entreprise": "aucune", "visite": "", "invitation": ""}],
        description=("Essai à blanc : " if dry_run else "") + f"{len(rows)} visite(s) réservée(s)",
    )
    get_run_logger().info("%d visit(s) booked (dry run: %s)", len(rows), dry_run)
    return rows


@task(name="queue-visit-reminders", cache_policy=NO_CACHE)
def queue_visit_reminders(*, settings: Settings, day: date) -> int:
    """Queue the SMS reminders of the visits taking place on ``day``; return how many are new."""
    engine = engine_for(settings.db_url)
    require_schema(engine)
    with Session(engine) as session:
        reminders = due_reminders(session=session, settings=settings, day=day)
        added = enqueue_reminders(
            session=session, settings=settings, reminders=reminders,
            templates=SmsTemplates(settings.templates_dir), now=datetime.now(UTC),
        )  # fmt: skip
        session.commit()
    get_run_logger().info("%d reminder(s) due for %s, %d new", len(reminders), day, added)
    return added


@task(name="close-visit", cache_policy=NO_CACHE)
def close_booked_visit(*, settings: Settings, siret: str, notes: str) -> dict[str, str | float]:
    """Close the company's booked visit: stage visited, 2 h in the time ledger, the flow questionnaire queued."""
    now = datetime.now(UTC)
    with session_scope(engine_for(settings.db_url)) as session:
        visit = find_visit(session=session, siret=siret)
        entry = close_visit(
            session=session, visit=visit, notes=notes, now=now,
            actor=current_actor(), timezone=settings.timezone,
        )  # fmt: skip
        company = session.get(Company, visit.company_id)
        queued = company is not None and invite_to_inventory(
            session=session, settings=settings, templates=templates_for(settings),
            company=company, contact_id=visit.contact_id, now=now,
        )  # fmt: skip
        return {"siret": siret, "hours": entry.hours, "day": entry.day.isoformat(),
                "questionnaire": "en file" if queued else "non envoyé"}  # fmt: skip
