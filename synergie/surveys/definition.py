"""Survey files: ``templates/surveys/NAME.yaml`` read, checked against the schema, refused in French naming the line.

A survey is data staff write, not code: a title, an introduction and questions of six kinds.
The staff's override folder (``SYNERGIE_TEMPLATES_DIR``) is searched first, in its ``surveys/``
sub-folder, then the bundled ``templates/surveys/``. PyYAML composes the file into nodes that
keep their line; pydantic checks the shape; every problem is reported with the line it is on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = [
    "BUNDLED_SURVEYS",
    "KIND_LABELS_FR",
    "Question",
    "QuestionKind",
    "SurveyDefinition",
    "SurveyFileError",
    "available_surveys",
    "load_survey",
    "parse_survey",
    "survey_path",
]

BUNDLED_SURVEYS = Path(__file__).resolve().parents[2] / "templates" / "surveys"
OVERRIDE_SUBFOLDER = "surveys"
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,99}\Z")
RATING_SCALE = (1, 2, 3, 4, 5)
DEFAULT_TEXT_LENGTH = 2000


class QuestionKind(StrEnum):
    """The kinds of question a survey file may ask, by the name the file uses."""

    RATING = "note"
    SINGLE = "choix-unique"
    MULTIPLE = "choix-multiple"
    YES_NO = "oui-non"
    NUMBER = "nombre"
    TEXT = "texte"


KIND_LABELS_FR: dict[QuestionKind, str] = {
    QuestionKind.RATING: "note de 1 à 5",
    QuestionKind.SINGLE: "un choix",
    QuestionKind.MULTIPLE: "plusieurs choix",
    QuestionKind.YES_NO: "oui ou non",
    QuestionKind.NUMBER: "nombre",
    QuestionKind.TEXT: "texte libre",
}


class SurveyFileError(ValueError):
    """A survey file that cannot be read or does not describe a survey; the message names each line at fault."""


def _yes_no(value: Any) -> Any:
    """« oui » / « non » as booleans (YAML itself only knows true/false, yes/no)."""
    if isinstance(value, str) and value.strip().lower() in ("oui", "non"):
        return value.strip().lower() == "oui"
    return value


class Question(BaseModel):
    """One question of a survey file."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,49}$")
    kind: QuestionKind = Field(alias="type")
    label: str = Field(alias="question", min_length=1, max_length=500)
    hint: str = Field(default="", alias="aide", max_length=1000)
    required: bool = Field(default=False, alias="obligatoire")
    options: tuple[str, ...] = ()
    extremes: tuple[str, str] | None = None
    minimum: float | None = Field(default=None, alias="min")
    maximum: float | None = Field(default=None, alias="max")
    max_length: int = Field(default=DEFAULT_TEXT_LENGTH, alias="longueur_max", ge=1, le=10_000)

    _yes_no = field_validator("required", mode="before")(_yes_no)

    @property
    def choices(self) -> tuple[str, ...]:
        """The answers offered, as the form submits them."""
        if self.kind == QuestionKind.RATING:
            return tuple(str(n) for n in RATING_SCALE)
        if self.kind == QuestionKind.YES_NO:
            return ("oui", "non")
        return self.options


class SurveyDefinition(BaseModel):
    """A whole survey file: title, introduction and questions (``name`` is the file's name)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(default="", exclude=True)
    title: str = Field(alias="titre", min_length=1, max_length=300)
    introduction: str = Field(default="", max_length=4000)
    questions: tuple[Question, ...] = Field(min_length=1, max_length=100)

    def question(self, question_id: str) -> Question:
        return next(q for q in self.questions if q.id == question_id)

    def stored(self) -> dict[str, Any]:
        """The definition as JSON for the database (the file's own keys)."""
        data = self.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        data["name"] = self.name
        return data

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> SurveyDefinition:
        """The definition a survey was opened with."""
        fields = dict(data)
        name = str(fields.pop("name", ""))
        return cls.model_validate(fields).model_copy(update={"name": name})


# ── reading a file ─────────────────────────────────────────────────────────────────────────

_TOP_FIELDS = ("titre", "introduction", "questions")
_QUESTION_FIELDS = ("id", "type", "question", "aide", "obligatoire", "options", "extremes",
                    "min", "max", "longueur_max")  # fmt: skip
Path_ = tuple[str | int, ...]


def _lines(node: yaml.Node, path: Path_ = ()) -> Iterator[tuple[Path_, int, bool]]:
    """Yield (path, line, duplicate) for every key and list item of the composed document."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            yield (*path, name), key.start_mark.line + 1, name in seen
            seen.add(name)
            yield from _lines(value, (*path, name))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield (*path, index), item.start_mark.line + 1, False
            yield from _lines(item, (*path, index))


def _line_of(lines: dict[Path_, int], loc: Path_) -> int:
    """The line of ``loc``, or of the nearest enclosing key or item that has one."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def _where(loc: Path_, data: Any) -> str:
    """« questions › n° 3 (satisfaction) › type »: a path a person can follow in the file."""
    parts: list[str] = []
    node = data
    for step in loc:
        if isinstance(step, int):
            ident = (
                node[step].get("id")
                if isinstance(node, list) and step < len(node) and isinstance(node[step], dict)
                else None
            )
            parts.append(f"n° {step + 1}" + (f" ({ident})" if ident else ""))
        else:
            parts.append(str(step))
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            node = None
    return " › ".join(parts)


def _french(error: Any, loc: Path_) -> str:
    """Pydantic's error, said in French."""
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    fields = _QUESTION_FIELDS if any(isinstance(s, int) for s in loc) else _TOP_FIELDS
    messages = {
        "missing": "champ obligatoire manquant",
        "extra_forbidden": f"champ inconnu ; champs possibles : {', '.join(fields)}",
        "string_type": "doit être un texte (mettez-le entre guillemets)",
        "string_too_short": "ne doit pas être vide",
        "string_too_long": f"trop long ({ctx.get('max_length')} caractères au plus)",
        "string_pattern_mismatch": "lettres minuscules, chiffres et tirets seulement, ex. « satisfaction-globale »",
        "enum": f"« {value} » n'est pas un type connu ; types possibles : {', '.join(k.value for k in QuestionKind)}",
        "bool_type": "doit valoir oui ou non",
        "bool_parsing": "doit valoir oui ou non",
        "int_type": "doit être un nombre entier",
        "int_parsing": "doit être un nombre entier",
        "int_from_float": "doit être un nombre entier",
        "float_type": "doit être un nombre",
        "float_parsing": "doit être un nombre",
        "greater_than_equal": f"doit valoir au moins {ctx.get('ge')}",
        "less_than_equal": f"doit valoir au plus {ctx.get('le')}",
        "tuple_type": "doit être une liste (une ligne « - … » par élément)",
        "list_type": "doit être une liste (une ligne « - … » par élément)",
        "too_short": f"il en faut au moins {ctx.get('min_length')}",
        "too_long": f"{ctx.get('max_length')} au plus",
        "model_type": "doit être une suite de champs « nom: valeur »",
        "model_attributes_type": "doit être une suite de champs « nom: valeur »",
    }
    if kind in messages:
        return messages[kind]
    return f"valeur refusée ({error.get('msg', kind)})"


def _coherence(survey: SurveyDefinition) -> Iterator[tuple[Path_, str]]:
    """The rules pydantic's shape cannot say: options by kind, unique ids, a sensible range."""
    seen: dict[str, int] = {}
    for index, q in enumerate(survey.questions):
        at: Path_ = ("questions", index)
        if q.id in seen:
            yield (
                (*at, "id"),
                f"l'identifiant « {q.id} » est déjà celui de la question n° {seen[q.id] + 1}",
            )
        seen.setdefault(q.id, index)
        if q.kind in (QuestionKind.SINGLE, QuestionKind.MULTIPLE):
            if len(q.options) < 2:
                yield (
                    (*at, "options"),
                    f"une question « {q.kind.value} » propose au moins deux options",
                )
            for number, option in enumerate(q.options):
                if not option.strip():
                    yield (*at, "options", number), "option vide"
                elif q.options.index(option) != number:
                    yield (*at, "options", number), f"l'option « {option} » est déjà proposée"
        elif q.options:
            yield (*at, "options"), f"une question « {q.kind.value} » ne propose pas d'options"
        if q.extremes is not None and q.kind != QuestionKind.RATING:
            yield (*at, "extremes"), "« extremes » ne sert qu'aux questions « note »"
        if (q.minimum is not None or q.maximum is not None) and q.kind != QuestionKind.NUMBER:
            yield (
                (*at, "min" if q.minimum is not None else "max"),
                "« min » et « max » ne servent qu'aux questions « nombre »",
            )
        if q.minimum is not None and q.maximum is not None and q.minimum > q.maximum:
            yield (*at, "min"), f"min ({q.minimum:g}) est plus grand que max ({q.maximum:g})"
    # fmt: skip


def parse_survey(text: str, *, name: str, source: str) -> SurveyDefinition:
    """Return the survey ``text`` describes, or raise SurveyFileError listing each problem with its line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise SurveyFileError(
            f"Le questionnaire {source} n'est pas un YAML valide, ligne {line} : {exc.problem or exc}. "
            "Vérifiez l'indentation (espaces, pas de tabulations) et mettez entre guillemets un texte "
            "qui contient « : » ou commence par un caractère spécial."
        ) from exc
    except yaml.YAMLError as exc:
        raise SurveyFileError(
            f"Le questionnaire {source} n'est pas un YAML valide : {exc}"
        ) from exc
    if not isinstance(data, dict) or node is None:
        raise SurveyFileError(
            f"Le questionnaire {source}, ligne 1 : le fichier doit décrire un questionnaire "
            "(champs titre, introduction, questions)."
        )
    found = list(_lines(node))
    lines = {path: line for path, line, _ in found}
    problems = [(line, f"{_where(path, data)} : clé répétée (une seule fois par bloc)")
                for path, line, duplicate in found if duplicate]  # fmt: skip
    survey = None
    try:
        survey = SurveyDefinition.model_validate(data).model_copy(update={"name": name})
    except ValidationError as exc:
        errors = exc.errors()
        for error in errors:
            loc = tuple(error["loc"])
            if error["type"] == "too_short" and any(
                tuple(other["loc"][: len(loc)]) == loc and len(other["loc"]) > len(loc)
                for other in errors
            ):
                continue  # the list is short only because its items failed: they are listed
            problems.append((_line_of(lines, loc), f"{_where(loc, data)} : {_french(error, loc)}"))
    if survey is not None:
        problems += [(_line_of(lines, loc), f"{_where(loc, data)} : {message}")
                     for loc, message in _coherence(survey)]  # fmt: skip
    if problems:
        listed = "\n".join(f"  ligne {line} : {message}" for line, message in sorted(problems))
        raise SurveyFileError(f"Le questionnaire {source} n'est pas valide :\n{listed}")
    assert survey is not None
    return survey


def survey_path(name_or_file: str, override_dir: Path | None = None) -> Path:
    """The file of survey ``name`` (override folder first, then bundled), or the path given itself."""
    candidate = Path(name_or_file)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return candidate
    if not _NAME.match(name_or_file):
        raise SurveyFileError(
            f"« {name_or_file} » n'est ni un nom de questionnaire (lettres minuscules, chiffres, "
            "tirets : ex. suivi-rencontre) ni un fichier .yaml existant."
        )
    folders = [override_dir / OVERRIDE_SUBFOLDER] if override_dir is not None else []
    for folder in [*folders, BUNDLED_SURVEYS]:
        for suffix in (".yaml", ".yml"):
            path = folder / f"{name_or_file}{suffix}"
            if path.is_file():
                return path
    known = ", ".join(available_surveys(override_dir)) or "aucun"
    raise SurveyFileError(
        f"Aucun questionnaire « {name_or_file} » : questionnaires disponibles : {known}."
    )


def load_survey(name_or_file: str, override_dir: Path | None = None) -> SurveyDefinition:
    """Read and check survey ``name`` (or a .yaml file); raise SurveyFileError in French."""
    path = survey_path(name_or_file, override_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SurveyFileError(f"Le questionnaire {path} ne peut pas être lu : {exc}") from exc
    name = path.stem if _NAME.match(path.stem) else "questionnaire"
    return parse_survey(text, name=name, source=str(path))


def available_surveys(override_dir: Path | None = None) -> list[str]:
    """The names of the survey files found (override folder and bundled), sorted."""
    folders = [override_dir / OVERRIDE_SUBFOLDER] if override_dir is not None else []
    names = {
        path.stem
        for folder in [*folders, BUNDLED_SURVEYS] if folder.is_dir()
        for path in folder.iterdir()
        if path.suffix in (".yaml", ".yml") and _NAME.match(path.stem)
    }  # fmt: skip
    return sorted(names)
