"""A survey's results: per question the count, mean and distribution (or the free texts), the response rate, a CSV."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from models.surveys import Survey, SurveyRecipient, SurveyResponse
from models.tables import Company, Contact, Meeting
from synergie.french import number
from synergie.listing.loader import inert_cell
from synergie.surveys.answers import format_answer
from synergie.surveys.definition import KIND_LABELS_FR, QuestionKind, SurveyDefinition
from synergie.surveys.outreach import (
    SurveyError,
    attending_company_ids,
    is_open,
    survey_for_meeting,
)

__all__ = [
    "CSV_COLUMNS",
    "QuestionResult",
    "SurveyResults",
    "results_markdown",
    "survey_results",
    "write_results_csv",
]

CSV_COLUMNS = ("rencontre", "questionnaire", "entreprise", "siret", "contact", "e-mail",
               "question_id", "question", "réponse", "enregistrée le")  # fmt: skip


@dataclass(frozen=True)
class QuestionResult:
    """One question's results: how many answered, the mean (notes, numbers), the distribution or the texts."""

    id: str
    label: str
    kind: QuestionKind
    count: int
    mean: float | None = None
    distribution: tuple[tuple[str, int], ...] = ()
    texts: tuple[tuple[str, str], ...] = ()  # (company, text)


@dataclass(frozen=True)
class SurveyResults:
    """A meeting's survey results and response rate among the attending companies."""

    meeting_id: int
    meeting_title: str
    survey_id: int
    title: str
    open: bool
    attending_companies: int
    responding_companies: int
    invited_contacts: int
    responses: int
    questions: tuple[QuestionResult, ...] = field(default_factory=tuple)

    @property
    def response_rate(self) -> float | None:
        """Share of the attending companies with at least one answer."""
        if not self.attending_companies:
            return None
        return self.responding_companies / self.attending_companies


def _question_result(question: Any, answers: list[tuple[str, Any]]) -> QuestionResult:
    given = [(company, value) for company, value in answers if value is not None and value != []]
    kind = question.kind
    if kind == QuestionKind.TEXT:
        return QuestionResult(question.id, question.label, kind, len(given),
                              texts=tuple((c, str(v)) for c, v in given))  # fmt: skip
    if kind == QuestionKind.MULTIPLE:
        counts = Counter(option for _, chosen in given for option in chosen)
        return QuestionResult(question.id, question.label, kind, len(given),
                              distribution=tuple((o, counts[o]) for o in question.options))  # fmt: skip
    values = [v for _, v in given]
    mean = (
        sum(values) / len(values)
        if values and kind in (QuestionKind.RATING, QuestionKind.NUMBER)
        else None
    )
    if kind == QuestionKind.NUMBER:
        counts = Counter(format_answer(question, v) for v in values)
        return QuestionResult(question.id, question.label, kind, len(given), mean,
                              tuple(sorted(counts.items(), key=lambda kv: float(kv[0].replace(",", ".")))))  # fmt: skip
    counts = Counter(format_answer(question, v) for v in values)
    return QuestionResult(question.id, question.label, kind, len(given), mean,
                          tuple((c, counts[c]) for c in question.choices))  # fmt: skip


def _rows(session: Session, survey: Survey) -> list[tuple[SurveyResponse, Company, Contact]]:
    return list(
        session.exec(
            select(SurveyResponse, Company, Contact)
            .join(Company, col(Company.id) == col(SurveyResponse.company_id))
            .join(Contact, col(Contact.id) == col(SurveyResponse.contact_id))
            .where(SurveyResponse.survey_id == survey.id)
            .order_by(col(Company.name), col(SurveyResponse.id))
        ).all()
    )


def _survey_of(session: Session, meeting_id: int) -> tuple[Meeting, Survey]:
    meeting = session.get(Meeting, meeting_id)
    if meeting is None:
        raise SurveyError(
            f"Aucune rencontre n° {meeting_id} : « synergie meetings list » les montre toutes."
        )
    survey = survey_for_meeting(session, meeting_id)
    if survey is None:
        raise SurveyError(
            f"La rencontre n° {meeting_id} n'a pas encore de questionnaire : il s'ouvre quand la "
            f"présence est notée, avec « synergie surveys send {meeting_id} »."
        )
    return meeting, survey


def survey_results(*, session: Session, meeting_id: int, now: datetime) -> SurveyResults:
    """The results of the meeting's survey, computed now from the answers stored."""
    meeting, survey = _survey_of(session, meeting_id)
    definition = SurveyDefinition.from_stored(survey.definition)
    rows = _rows(session, survey)
    attending = set(attending_company_ids(session, meeting_id))
    invited = session.exec(
        select(SurveyRecipient.contact_id).where(SurveyRecipient.survey_id == survey.id)
    ).all()
    questions = tuple(
        _question_result(q, [(company.name, response.answers.get(q.id)) for response, company, _ in rows])
        for q in definition.questions
    )  # fmt: skip
    return SurveyResults(
        meeting_id=meeting_id, meeting_title=meeting.title, survey_id=survey.id or 0,
        title=survey.title, open=is_open(survey, now), attending_companies=len(attending),
        responding_companies=len({company.id for _, company, _ in rows} & attending),
        invited_contacts=len(invited), responses=len(rows), questions=questions,
    )  # fmt: skip


def rate_text(results: SurveyResults) -> str:
    """« 9 entreprises présentes sur 15 ont répondu (60 %) ; 10 réponses pour 17 contacts invités »."""
    rate = results.response_rate
    percent = f" ({number(100 * rate, digits=0)} %)" if rate is not None else ""
    return (
        f"{results.responding_companies} entreprise(s) présente(s) sur {results.attending_companies} "
        f"ont répondu{percent} ; {results.responses} réponse(s) pour {results.invited_contacts} "
        "contact(s) invité(s)."
    )


def results_markdown(results: SurveyResults) -> str:
    """The results as Markdown (the Prefect artifact): the rate, then each question."""
    state = "ouvert" if results.open else "clos"
    lines = [
        f"# {results.title}",
        "",
        f"Rencontre n° {results.meeting_id} : {results.meeting_title} — questionnaire {state}.",
        "",
        f"**Taux de réponse** : {rate_text(results)}",
        "",
    ]
    for index, q in enumerate(results.questions, start=1):
        lines += [f"## {index}. {q.label}", "", f"*{KIND_LABELS_FR[q.kind]}* — {q.count} réponse(s)"
                  + (f", moyenne {number(q.mean)}" if q.mean is not None else ""), ""]  # fmt: skip
        if q.distribution:
            lines += ["| Réponse | Nombre |", "|---|---|"]
            lines += [f"| {_cell(label)} | {count} |" for label, count in q.distribution]
            lines.append("")
        for company, text in q.texts:
            lines.append(f"> {_cell(text)} — *{_cell(company)}*")
            lines.append("")
    return "\n".join(lines)


def _cell(text: str) -> str:
    """Text safe inside a Markdown table or quote: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def write_results_csv(*, session: Session, meeting_id: int, path: Path, tz: tzinfo) -> int:
    """Write the answers (UTF-8 with BOM, ``;``, one row per answer, formulas defused); return the rows written."""
    meeting, survey = _survey_of(session, meeting_id)
    definition = SurveyDefinition.from_stored(survey.definition)
    written = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(CSV_COLUMNS)
        for response, company, contact in _rows(session, survey):
            for q in definition.questions:
                value = response.answers.get(q.id)
                if value is None:
                    continue
                row = (meeting.title, survey.title, company.name, company.siret or "",
                       contact.name or "", contact.email or "", q.id, q.label,
                       format_answer(q, value), f"{response.updated_at.astimezone(tz):%d/%m/%Y %H:%M}")  # fmt: skip
                writer.writerow([inert_cell(str(cell)) for cell in row])
                written += 1
    return written
