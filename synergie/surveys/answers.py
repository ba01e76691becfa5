"""A survey page's form, checked on the server: what was typed, the answers it gives, a French message per field."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from synergie.surveys.definition import Question, QuestionKind, SurveyDefinition

__all__ = ["CheckedForm", "check_form", "field_name", "format_answer", "typed_from_answers"]

_NUMBER = re.compile(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)\Z")
_SPACES = re.compile(r"[\s\u00a0\u202f']")
_TYPED_LIMIT = 20_000  # what a page keeps of a field, however long the post


def field_name(question: Question) -> str:
    """The form field of a question: ``q-<id>``."""
    return f"q-{question.id}"


@dataclass
class CheckedForm:
    """A posted form: the values typed (to show again), the answers it gives, and the errors by question id."""

    typed: dict[str, list[str]]
    answers: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.errors


def _french_number(value: float) -> str:
    return f"{value:g}".replace(".", ",")


def parse_number(text: str) -> float | None:
    """A number typed the French way (« 1 234,5 ») or the English way (« 1234.5 »); None if it is not one."""
    compact = _SPACES.sub("", text)
    if not _NUMBER.match(compact):
        return None
    value = float(compact.replace(",", "."))
    return value if math.isfinite(value) else None


def _check(question: Question, values: Sequence[str]) -> tuple[Any, str | None]:
    """The answer ``values`` give to ``question`` (None when unanswered), or the French message."""
    present = [v for v in values if v.strip()]
    if not present:
        if not question.required:
            return None, None
        return None, {
            QuestionKind.RATING: "Cette question est obligatoire : choisissez une note de 1 à 5.",
            QuestionKind.SINGLE: "Cette question est obligatoire : choisissez une réponse.",
            QuestionKind.MULTIPLE: "Cette question est obligatoire : cochez au moins une réponse.",
            QuestionKind.YES_NO: "Cette question est obligatoire : répondez oui ou non.",
            QuestionKind.NUMBER: "Cette question est obligatoire : écrivez un nombre.",
            QuestionKind.TEXT: "Cette question est obligatoire : écrivez votre réponse.",
        }[question.kind]
    kind = question.kind
    if kind == QuestionKind.MULTIPLE:
        chosen = list(dict.fromkeys(present))
        if any(v not in question.options for v in chosen):
            return (
                None,
                "Une réponse cochée n'est pas dans la liste : cochez parmi les réponses proposées.",
            )
        return [o for o in question.options if o in chosen], None
    if len(present) > 1:
        return None, "Une seule réponse est possible ici."
    value = present[0].strip() if kind != QuestionKind.TEXT else present[0]
    if kind == QuestionKind.RATING:
        if value not in question.choices:
            return None, "Choisissez une note de 1 à 5."
        return int(value), None
    if kind == QuestionKind.SINGLE:
        if value not in question.options:
            return None, "Choisissez une des réponses proposées."
        return value, None
    if kind == QuestionKind.YES_NO:
        if value not in ("oui", "non"):
            return None, "Répondez oui ou non."
        return value == "oui", None
    if kind == QuestionKind.NUMBER:
        number = parse_number(value)
        if number is None:
            return None, "Écrivez un nombre, par exemple 12 ou 3,5."
        if question.minimum is not None and number < question.minimum:
            return None, f"Le nombre doit valoir au moins {_french_number(question.minimum)}."
        if question.maximum is not None and number > question.maximum:
            return None, f"Le nombre doit valoir au plus {_french_number(question.maximum)}."
        return (int(number) if number.is_integer() else number), None
    text = value.replace("\r\n", "\n").strip()
    if len(text) > question.max_length:
        return None, (
            f"Votre réponse compte {len(text)} caractères, {question.max_length} au plus : "
            "raccourcissez-la (elle est gardée ci-dessous)."
        )
    return text, None


def check_form(
    definition: SurveyDefinition, getlist: Callable[[str], Sequence[str]]
) -> CheckedForm:
    """Check a posted form (``getlist(name)`` gives a field's values) against the survey's questions."""
    checked = CheckedForm(typed={})
    for question in definition.questions:
        values = [str(v)[:_TYPED_LIMIT] for v in getlist(field_name(question))]
        checked.typed[question.id] = values
        answer, error = _check(question, values)
        if error is not None:
            checked.errors[question.id] = error
        elif answer is not None:
            checked.answers[question.id] = answer
    return checked


def typed_from_answers(
    definition: SurveyDefinition, answers: Mapping[str, Any]
) -> dict[str, list[str]]:
    """Stored answers as the form's values, to show a saved answer again."""
    typed: dict[str, list[str]] = {}
    for question in definition.questions:
        value = answers.get(question.id)
        if value is None:
            typed[question.id] = []
        elif isinstance(value, bool):
            typed[question.id] = ["oui" if value else "non"]
        elif isinstance(value, list):
            typed[question.id] = [str(v) for v in value]
        elif isinstance(value, float):
            typed[question.id] = [_french_number(value)]
        else:
            typed[question.id] = [str(value)]
    return typed


def format_answer(question: Question, value: Any) -> str:
    """An answer as one line of French text (CSV, summaries)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, list):
        return " | ".join(str(v) for v in value)
    if isinstance(value, float):
        return _french_number(value)
    return str(value)
