"""The programme's report: one list of sections, each built by one function from the database.

Adding a section is writing one function ``(session) -> Section`` and listing it in SECTIONS.
A section with nothing to show yet (no survey opened, no referral) says « pas encore de données ».
Every figure is computed from the database; the reference case's figures are only shown beside.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, func, select

from models.enums import (
    ANSWER_LABELS_FR,
    STAGE_LABELS_FR,
    SYNERGY_STATUS_LABELS_FR,
    Activity,
    Answer,
    MeetingStatus,
    Stage,
    SynergyStatus,
)
from models.stages import PIPELINE
from models.surveys import Survey
from models.tables import Company, Meeting, Referral, Registration, Synergy, TimeEntry
from synergie.french import moment, number
from synergie.reporting.funnel import SEED_FUNNEL, funnel
from synergie.reporting.impact import COUNTED_NOTE, impact

NO_DATA = "pas encore de données"
# The seed's staff budget (hours): 5 h listing, 60 h visits, 15 h flow analysis, 10 h per meeting.
SEED_HOURS: dict[Activity, float] = {
    Activity.LISTING: 5,
    Activity.VISIT: 60,
    Activity.FLOWS_COLLECTION: 15,
}
SEED_HOURS_PER_MEETING = 10.0
SEED_PARTICIPANTS = 15  # the seed's World Café: 15 participants
PARIS = ZoneInfo("Europe/Paris")  # where the programme's dates are shown unless told otherwise
ACTIVITY_LABELS_FR: dict[Activity, str] = {
    Activity.LISTING: "Listing des entreprises",
    Activity.CALL: "Appels (partenaire)",
    Activity.VISIT: "Visites",
    Activity.FLOWS_COLLECTION: "Collecte et analyse des flux",
    Activity.MEETING: "Rencontres",
}


@dataclass(frozen=True)
class Chart:
    """A bar chart to draw: one bar per label, optionally a reference bar beside each."""

    title: str
    labels: tuple[str, ...]
    values: tuple[float, ...]
    reference: tuple[float | None, ...] | None = None
    unit: str = ""


@dataclass(frozen=True)
class Section:
    """One part of the report: a title, a table, notes, and perhaps a chart."""

    key: str
    title: str
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    notes: tuple[str, ...] = ()
    chart: Chart | None = None
    figures: dict[str, float] = field(default_factory=dict)  # raw figures, for tests and artifacts

    @property
    def empty(self) -> bool:
        return not self.rows


@dataclass(frozen=True)
class Report:
    title: str
    generated_at: datetime
    sections: tuple[Section, ...]

    def section(self, key: str) -> Section:
        return next(s for s in self.sections if s.key == key)


def _percent(part: float, whole: float) -> str:
    return f"{number(100 * part / whole, digits=0)} %" if whole else "—"


def funnel_section(session: Session) -> Section:
    """Companies per stage reached, conversion per step, against the seed's 60 → 30 → 15."""
    steps = funnel(session=session)
    rows, previous = [], None
    for step in steps:
        conversion = _percent(step.reached, previous) if previous is not None else "—"
        rows.append((step.label, str(step.now), str(step.reached), conversion,
                     str(step.seed) if step.seed else ""))  # fmt: skip
        previous = step.reached
    seed_steps = [s for s in steps if s.stage in SEED_FUNNEL]
    notes = [
        "Étapes du cas de référence : "
        + " → ".join(f"{s.label} {s.reached} (référence {s.seed})" for s in seed_steps)
    ]
    for before, after in zip(seed_steps, seed_steps[1:], strict=False):
        notes.append(
            f"De « {before.label} » à « {after.label} » : {_percent(after.reached, before.reached)}"
            f" (référence {_percent(after.seed or 0, before.seed or 0)})"
        )
    return Section(
        "funnel", "Entonnoir des entreprises",
        ("Étape", "Y sont", "L'ont atteinte", "Conversion depuis l'étape précédente", "Référence"),
        tuple(rows), tuple(notes),
        Chart("Entreprises ayant atteint chaque étape", tuple(s.label for s in steps),
              tuple(float(s.reached) for s in steps),
              tuple(float(s.seed) if s.seed else None for s in steps)),
        {f"reached.{s.stage.value}": s.reached for s in steps},
    )  # fmt: skip


def _has_table(session: Session, name: str) -> bool:
    return sa.inspect(session.connection()).has_table(name)


def _meeting_count(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Meeting)).one())


def hours_section(session: Session) -> Section:
    """Staff hours per activity from the time ledger, against the seed's budget."""
    spent: dict[Activity, float] = dict(
        session.execute(
            sa.select(TimeEntry.activity, func.sum(TimeEntry.hours)).group_by(TimeEntry.activity)  # type: ignore[call-overload]
        ).all()
    )
    meetings = _meeting_count(session)
    rows = []
    for activity in Activity:
        hours = float(spent.get(activity, 0) or 0)
        budget: float | None = SEED_HOURS.get(activity)
        budget_text = number(budget) + " h" if budget is not None else "—"
        if activity == Activity.MEETING:
            budget = SEED_HOURS_PER_MEETING * meetings if meetings else None
            budget_text = f"{number(SEED_HOURS_PER_MEETING)} h par rencontre" + (
                f" × {meetings}" if meetings else ""
            )
        rows.append((ACTIVITY_LABELS_FR[activity], f"{number(hours)} h", budget_text,
                     _percent(hours, budget) if budget else "—"))  # fmt: skip
    return Section(
        "hours", "Temps passé par l'équipe",
        ("Activité", "Heures saisies", "Budget de référence", "Part du budget"), tuple(rows),
        ("Les appels sont faits par le partenaire : le cas de référence ne les budgète pas.",),
        Chart("Heures par activité", tuple(r[0] for r in rows),
              tuple(float(spent.get(a, 0) or 0) for a in Activity),
              tuple(SEED_HOURS.get(a) for a in Activity), "h"),
        {f"hours.{a.value}": float(spent.get(a, 0) or 0) for a in Activity},
    )  # fmt: skip


def synergies_section(session: Session) -> Section:
    """Synergies by status."""
    counts: dict[SynergyStatus, int] = dict(
        session.execute(
            sa.select(Synergy.status, func.count()).group_by(Synergy.status)  # type: ignore[call-overload]
        ).all()
    )
    rows = tuple((SYNERGY_STATUS_LABELS_FR[s], str(counts.get(s, 0))) for s in SynergyStatus)
    return Section(
        "synergies", "Synergies par statut", ("Statut", "Synergies"), rows,
        chart=Chart("Synergies par statut", tuple(r[0] for r in rows),
                    tuple(float(counts.get(s, 0)) for s in SynergyStatus)),
        figures={f"synergies.{s.value}": counts.get(s, 0) for s in SynergyStatus},
    )  # fmt: skip


def impact_section(session: Session) -> Section:
    """Tonnes reused, km and tCO2e avoided per year by the synergies agreed or running."""
    result = impact(session.exec(select(Synergy).order_by(col(Synergy.id))).all())
    rows = tuple(
        (i.title, SYNERGY_STATUS_LABELS_FR[i.status], number(i.tonnes_per_year),
         number(i.km_per_year, digits=0), number(i.kg_co2e_per_year / 1000), i.factor.label)
        for i in result.per_synergy
    ) + (("Total", "", number(result.tonnes_reused_per_year),
          number(result.km_per_year, digits=0), number(result.t_co2e_per_year), ""),)  # fmt: skip
    notes = [
        f"{number(result.km_per_year, digits=0)} km de poids lourds évités par an, "
        f"{number(result.t_co2e_per_year)} tCO2e évitées par an, "
        f"{number(result.tonnes_reused_per_year)} t de matières réutilisées par an.",
        "km par an = trajets supprimés par mois × km par trajet × 12 ; " + COUNTED_NOTE + ".",
        *("Facteur : " + f.citation() for f in result.factors_used),
    ]
    return Section(
        "impact", "Impact : matières réutilisées, kilomètres et CO2e évités",
        ("Synergie", "Statut", "t réutilisées/an", "km évités/an", "tCO2e évitées/an", "Véhicule"),
        rows if result.per_synergy else (), tuple(notes),
        figures={"km_per_year": result.km_per_year, "t_co2e_per_year": result.t_co2e_per_year,
                 "tonnes_reused_per_year": result.tonnes_reused_per_year},
    )  # fmt: skip


def meetings_section(session: Session, *, tz: tzinfo = PARIS) -> Section:
    """Each meeting: its date (shown in ``tz``), title, companies registered, present, waiting."""
    meetings = session.exec(select(Meeting).order_by(col(Meeting.starts_at), col(Meeting.id))).all()
    if not meetings:
        return Section("meetings", "Rencontres et participation", notes=(NO_DATA,),
                       figures={"meetings": 0})  # fmt: skip
    counts: dict[tuple[int, str], int] = {}
    for meeting_id, status, attended, n in session.execute(
        sa.select(Registration.meeting_id, Registration.status, Registration.attended,  # type: ignore[call-overload]
                  func.count())
        .where(col(Registration.removed).is_(False))
        .group_by(Registration.meeting_id, Registration.status, Registration.attended)
    ):  # fmt: skip
        status = Answer(status)
        counts[(meeting_id, status.value)] = counts.get((meeting_id, status.value), 0) + n
        if attended:
            counts[(meeting_id, "present")] = counts.get((meeting_id, "present"), 0) + n
    rows, figures = [], {"meetings": float(len(meetings))}
    for meeting in meetings:
        was_held = meeting.status == MeetingStatus.HELD
        registered = counts.get((meeting.id, Answer.REGISTERED.value), 0)  # type: ignore[arg-type]
        waiting = counts.get((meeting.id, Answer.WAITING.value), 0)  # type: ignore[arg-type]
        present = counts.get((meeting.id, "present"), 0)  # type: ignore[arg-type]
        title = meeting.title + (" (annulée)" if meeting.status == MeetingStatus.CANCELLED else "")
        rows.append((moment(meeting.starts_at, tz, weekday=False), title, str(registered),
                     str(present) if was_held else "—", str(waiting)))  # fmt: skip
        figures |= {f"registered.{meeting.id}": registered, f"present.{meeting.id}": present,
                    f"waiting.{meeting.id}": waiting}  # fmt: skip
    held = [m for m in meetings if m.status == MeetingStatus.HELD]
    notes = [
        f"{len(meetings)} rencontre(s), dont {len(held)} tenue(s) ; « Présentes » : entreprises "
        "notées présentes (une fois la rencontre tenue) ; « En attente » : inscrites au-delà "
        "de la capacité.",
        f"Référence : {SEED_PARTICIPANTS} participants par rencontre.",
    ]
    return Section(
        "meetings", "Rencontres et participation",
        ("Date", "Rencontre", "Inscrites", "Présentes", "En attente"), tuple(rows), tuple(notes),
        Chart("Entreprises présentes (ou inscrites) par rencontre", tuple(r[1] for r in rows),
              tuple(float(r[3] if r[3] != "—" else r[2]) for r in rows),
              tuple(float(SEED_PARTICIPANTS) for _ in rows)),
        figures,
    )  # fmt: skip


def referrals_section(session: Session) -> Section:
    """Who brought whom to which meeting, and how far the company brought went since."""
    referrer = aliased(Company)
    referred = aliased(Company)
    found = session.execute(
        sa.select(Meeting.title, referrer.name, referred.name, referred.stage,  # type: ignore[call-overload]
                  Registration.status, Registration.attended, Referral.company_id)
        .join(Referral, col(Referral.meeting_id) == col(Meeting.id))
        .join(referrer, referrer.id == col(Referral.referrer_company_id))
        .join(referred, referred.id == col(Referral.company_id))
        .outerjoin(Registration, sa.and_(col(Registration.meeting_id) == col(Referral.meeting_id),
                                         col(Registration.company_id) == col(Referral.company_id)))
        .order_by(col(Meeting.starts_at), col(Referral.id))
    ).all()  # fmt: skip
    if not found:
        return Section("referrals", "Parrainages", notes=(NO_DATA,), figures={"referrals": 0})
    rank = {stage: n for n, stage in enumerate(PIPELINE)}
    rows, companies, further = [], set(), set()
    for title, by, whom, stage, answer, attended, company_id in found:
        stage = Stage(stage)
        if attended:
            there = "présente"
        elif answer is None:
            there = "pas encore invitée"
        else:
            there = ANSWER_LABELS_FR[Answer(answer)]
        rows.append((title, by, whom, STAGE_LABELS_FR[stage], there))
        companies.add(company_id)
        if rank.get(stage, -1) >= rank[Stage.VISITED]:
            further.add(company_id)
    return Section(
        "referrals", "Parrainages",
        ("Rencontre", "Invitée par", "Entreprise invitée", "Étape atteinte", "À la rencontre"),
        tuple(rows),
        (f"{len(companies)} entreprise(s) invitée(s) par un participant, dont {len(further)} "
         "visitée(s) ou plus loin.",),
        figures={"referrals": len(companies), "referrals.visited": len(further)},
    )  # fmt: skip


def surveys_section(session: Session) -> Section:
    """Each meeting's follow-up survey: attending companies, those that answered, the response rate."""
    from synergie.surveys.results import survey_results

    title = "Questionnaires de suivi"
    if not _has_table(session, "survey"):
        return Section("surveys", title, notes=(NO_DATA,))
    meeting_ids = session.exec(
        select(Survey.meeting_id).join(Meeting, col(Meeting.id) == col(Survey.meeting_id))
        .order_by(col(Meeting.starts_at))
    ).all()  # fmt: skip
    if not meeting_ids:
        return Section("surveys", title, notes=(NO_DATA,))
    rows, figures = [], {}
    attending = answered = 0
    for meeting_id in meeting_ids:
        results = survey_results(session=session, meeting_id=meeting_id, now=datetime.now(UTC))
        rate = results.response_rate
        rows.append((results.meeting_title, "ouvert" if results.open else "clos",
                     str(results.attending_companies), str(results.responding_companies),
                     _percent(results.responding_companies, results.attending_companies),
                     str(results.responses)))  # fmt: skip
        figures[f"surveys.rate.{meeting_id}"] = rate if rate is not None else 0.0
        attending += results.attending_companies
        answered += results.responding_companies
    figures["surveys.responses"] = float(sum(int(row[5]) for row in rows))
    return Section(
        "surveys", title,
        ("Rencontre", "Questionnaire", "Entreprises présentes", "Ont répondu", "Taux de réponse", "Réponses (contacts)"),
        tuple(rows),
        (f"Sur l'ensemble des rencontres : {answered} réponse(s) d'entreprise pour {attending} "
         f"présence(s), soit {_percent(answered, attending)}. Le détail de chaque questionnaire : "
         "« synergie surveys results N ».",),
        figures=figures,
    )  # fmt: skip


SECTIONS: tuple[Callable[[Session], Section], ...] = (
    funnel_section,
    hours_section,
    meetings_section,
    referrals_section,
    surveys_section,
    synergies_section,
    impact_section,
)


def build_report(*, session: Session, now: datetime, title: str, tz: tzinfo = PARIS) -> Report:
    """Every section, computed now from the database; a section that shows times takes ``tz``."""
    return Report(
        title,
        now,
        tuple(
            build(session, tz=tz) if "tz" in inspect.signature(build).parameters else build(session)  # type: ignore[call-arg]
            for build in SECTIONS
        ),
    )


def to_markdown(report: Report, *, when: str) -> str:
    """The report as Markdown (Prefect artifact): a heading, a table and notes per section."""
    lines = [f"# {report.title}", "", f"Établi le {when}.", ""]
    for section in report.sections:
        lines += [f"## {section.title}", ""]
        if section.rows:
            lines.append("| " + " | ".join(section.columns) + " |")
            lines.append("|" + "---|" * len(section.columns))
            lines += ["| " + " | ".join(row) + " |" for row in section.rows]
            lines.append("")
        lines += [f"- {note}" for note in section.notes]
        lines.append("")
    return "\n".join(lines)


def to_table_rows(section: Section) -> list[dict[str, str]]:
    """A section's table as rows of column → text (Prefect table artifact)."""
    return [dict(zip(section.columns, row, strict=True)) for row in section.rows]
