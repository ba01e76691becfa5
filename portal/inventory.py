"""The flow questionnaire's pages: a company lists its incoming and outgoing flows through its signed link.

Works without JavaScript: a fixed number of empty rows, an « Ajouter des lignes » button that
shows the page again with more, a « Retirer » box per row; every check is made on the server, and
a page with errors comes back with everything typed and each message next to its field.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool

from models.db import write_transaction
from models.inventory import (
    DIRECTION_LABELS_FR,
    FREQUENCY_LABELS_FR,
    MONEY_KIND_LABELS_FR,
    Direction,
    FlowOrigin,
    Frequency,
    MaterialFlow,
    MoneyKind,
    Outlet,
    Unit,
)
from models.tables import Company, Contact
from portal.events import FlowsSubmittedEvent, emit_flows_submitted
from synergie.inventory.codes import categories, format_waste_code
from synergie.inventory.questionnaire import read_inventory_token
from synergie.inventory.rows import (
    FIELD_LABELS,
    FIELDS,
    FlowRejected,
    FlowRow,
    is_blank,
    validate_flow,
)
from synergie.inventory.store import company_flows, replace_portal_flows
from synergie.messaging.links import InvalidToken
from synergie.settings import Settings

__all__ = ["ADDED_ROWS", "EMPTY_ROWS", "MAX_ROWS", "flows_emitter", "inventory_router"]

logger = logging.getLogger(__name__)

EMPTY_ROWS = 5  # empty rows on a first visit
ADDED_ROWS = 5  # rows « Ajouter des lignes » adds
MAX_ROWS = 200

Render = Callable[..., HTMLResponse]


def flows_emitter() -> Callable[[FlowsSubmittedEvent], None]:
    """The function that announces a submission (Prefect by default; tests override this dependency)."""
    return emit_flows_submitted


@dataclass
class FormRow:
    """One row of the form as shown: what was typed, and the message of each field at fault."""

    values: dict[str, str]
    errors: dict[str, str]


def _choices() -> dict[str, list[tuple[str, str]]]:
    """The options of each select, as (value, label)."""
    return {
        "direction": [(d.value, DIRECTION_LABELS_FR[d]) for d in (Direction.OUTGOING, Direction.INCOMING)],
        "category": [(c.code, c.label) for c in categories().values()],
        "unit": [(u.value, u.value) for u in Unit],
        "frequency": [(f.value, FREQUENCY_LABELS_FR[f]) for f in Frequency],
        "outlet": [(o.value, o.value.capitalize()) for o in Outlet],
        "money_kind": [(m.value, MONEY_KIND_LABELS_FR[m]) for m in MoneyKind],
    }  # fmt: skip


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}".replace(".", ",")


def _stored_values(flow: MaterialFlow) -> dict[str, str]:
    """A stored flow as the form's fields."""
    return {
        "direction": flow.direction.value,
        "description": flow.description,
        "category": flow.category,
        "waste_code": format_waste_code(flow.waste_code, flow.hazardous) if flow.waste_code else "",
        "quantity": _number(flow.quantity),
        "unit": flow.unit.value,
        "frequency": flow.frequency.value,
        "outlet": flow.outlet.value,
        "trips_per_month": _number(flow.trips_per_month),
        "km_per_trip": _number(flow.km_per_trip),
        "amount_eur": _number(flow.amount_eur),
        "money_kind": flow.money_kind.value if flow.money_kind else "",
        "note": flow.note or "",
    }


def _blank() -> FormRow:
    return FormRow({name: "" for name in FIELDS}, {})


def _typed_rows(form: Mapping[str, Any]) -> list[FormRow]:
    """The rows posted, without those whose « Retirer » box is ticked."""
    try:
        count = int(str(form.get("lignes", "0")))
    except ValueError:
        count = 0
    rows = []
    for index in range(max(0, min(count, MAX_ROWS))):
        if form.get(f"f-{index}-retirer"):
            continue
        values = {name: str(form.get(f"f-{index}-{name}", ""))[:2000] for name in FIELDS}
        rows.append(FormRow(values, {}))
    return rows


def inventory_router(
    *, settings: Settings, engine: sa.Engine, render: Render, now: Callable[[], datetime]
) -> APIRouter:
    """Return the questionnaire's routes (``/inventaire/{token}``) on ``engine``, rendered with the portal's ``render``."""
    router = APIRouter()
    hint = "Écrivez-nous à l'adresse ci-dessous : nous vous renverrons un lien."

    def error(status: int, title: str, message: str) -> HTMLResponse:
        return render("error.html", status, title=title, message=message, hint=hint)

    def whose(session: Session, token: str) -> tuple[Contact, Company] | HTMLResponse:
        try:
            claims = read_inventory_token(token, settings=settings, now=now())
        except InvalidToken as exc:
            # Never log the token: it opens the company's questionnaire.
            logger.info("refused an invalid questionnaire link")
            return error(400, "Lien non valide", str(exc))
        row = session.exec(
            select(Contact, Company)
            .join(Company, Company.id == Contact.company_id)  # type: ignore[arg-type]
            .where(Contact.public_id == claims.subject)
        ).first()
        if row is None:
            return error(404, "Questionnaire introuvable",
                         "Ce lien est authentique, mais la personne à qui il était destiné ne "
                         "figure plus dans nos fichiers.")  # fmt: skip
        return row[0], row[1]

    def page(
        company: Company, rows: list[FormRow], status: int = 200, **extra: Any
    ) -> HTMLResponse:
        context = {"already": False, "notice": "", "problem": "", "invalid": [], **extra}
        return render(
            "inventaire.html", status, company_name=company.name, rows=rows,
            labels=FIELD_LABELS, choices=_choices(), added_rows=ADDED_ROWS, **context,
        )  # fmt: skip

    @router.get("/inventaire/{token}", response_class=HTMLResponse)
    def questionnaire(token: str) -> HTMLResponse:
        """Show the company's questionnaire: what it sent last time, then empty rows."""
        with Session(engine) as session:
            found = whose(session, token)
            if isinstance(found, HTMLResponse):
                return found
            _, company = found
            stored = company_flows(session=session, company_id=company.id, origin=FlowOrigin.PORTAL)  # type: ignore[arg-type]
        rows = [FormRow(_stored_values(flow), {}) for flow in stored]
        rows += [_blank() for _ in range(max(EMPTY_ROWS - len(rows), 2))]
        return page(company, rows, already=bool(stored))

    def submit(
        token: str, form: Mapping[str, Any]
    ) -> tuple[HTMLResponse, FlowsSubmittedEvent | None]:
        with Session(engine) as session:
            found = whose(session, token)
            if isinstance(found, HTMLResponse):
                return found, None
            contact, company = found
        rows = _typed_rows(form)
        if form.get("action") == "ajouter":
            rows += [_blank() for _ in range(ADDED_ROWS)]
            rows = rows[:MAX_ROWS]
            return page(
                company, rows, notice=f"{ADDED_ROWS} lignes ajoutées en bas du tableau."
            ), None
        checked: list[FlowRow] = []
        for row in rows:
            if is_blank(row.values):
                continue
            try:
                checked.append(validate_flow(row.values))
            except FlowRejected as exc:
                row.errors = exc.errors
        invalid = [index for index, row in enumerate(rows) if row.errors]
        if invalid or not checked:
            if not rows:
                rows = [_blank() for _ in range(EMPTY_ROWS)]
            problem = (
                f"{len(invalid)} ligne(s) à corriger : rien n'a été enregistré. Vos saisies sont "
                "conservées ci-dessous, chaque erreur à côté de son champ."
                if invalid else "Remplissez au moins une ligne : rien n'a été enregistré."
            )  # fmt: skip
            return page(company, rows, 422, problem=problem, invalid=invalid), None
        moment = now()
        with write_transaction(engine) as connection:
            session = Session(bind=connection, expire_on_commit=False)
            company_row = session.get(Company, company.id)
            assert company_row is not None
            submission = replace_portal_flows(
                session=session,
                company=company_row,
                contact_id=contact.id,
                rows=checked,
                now=moment,
            )
            session.flush()
            submission_id = submission.id
            session.close()
        logger.info("questionnaire of company %s: %d flow(s) submitted", company.id, len(checked))
        event = FlowsSubmittedEvent(
            company_id=company.id, submission_id=submission_id, rows=len(checked), occurred=moment,  # type: ignore[arg-type]
        )  # fmt: skip
        done = render(
            "inventaire-merci.html", company_name=company.name, count=len(checked),
            flows=[(row.direction.value, row.description, f"{_number(row.quantity)} {row.unit.value} par {row.frequency.value}")
                   for row in checked],
            questionnaire_path=f"/inventaire/{token}",
        )  # fmt: skip
        return done, event

    @router.post("/inventaire/{token}", response_class=HTMLResponse)
    async def send_questionnaire(
        token: str,
        request: Request,
        background: BackgroundTasks,
        emit: Annotated[Callable[[FlowsSubmittedEvent], None], Depends(flows_emitter)],
    ) -> HTMLResponse:
        """Add rows, or check and store the answer (replacing the previous one), then announce it."""
        form = await request.form()
        response, event = await run_in_threadpool(submit, token, form)
        if event is not None:
            # After the commit and after the answer: a slow Prefect API must not delay the company;
            # a lost event is caught up by the scheduled review.
            background.add_task(_emit_safely, emit, event)
        return response

    return router


def _emit_safely(emit: Callable[[FlowsSubmittedEvent], None], event: FlowsSubmittedEvent) -> None:
    try:
        emit(event)
    except Exception:
        logger.exception(
            "flows-submitted event for company %s could not be emitted", event.company_id
        )
