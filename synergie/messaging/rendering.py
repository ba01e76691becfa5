"""E-mail templates: one Jinja2 environment per run renders a subject, a text part and an HTML part."""

from __future__ import annotations

import functools
import re
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PrefixLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    TemplateRuntimeError,
    TemplateSyntaxError,
    UndefinedError,
    meta,
)
from jinja2.utils import missing
from markupsafe import escape

from channels.mime import single_line

if TYPE_CHECKING:
    from synergie.settings import Settings

__all__ = [
    "BUNDLED_TEMPLATES",
    "MailTemplates",
    "RenderedEmail",
    "TemplateProblem",
    "one_line_subject",
    "programme_context",
    "reflow",
]

BUNDLED_TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "email"
BUNDLED_PREFIX = "bundled"
TEXT_SUFFIX = ".txt.j2"
HTML_SUFFIX = ".html.j2"
SUBJECT_BLOCK = "subject"
TEXT_WIDTH = 72

PROGRAMME_FIELDS = (
    "authority_name",
    "programme_name",
    "officer_name",
    "officer_email",
    "officer_phone",
    "partner_name",
    "authority_contact",
    "dpo_email",
    "retention_months",
)

_BLANK_LINE = re.compile(r"\n\s*\n")
# French typography: no line may start with ":", "?", "»"... nor split a phone number or "15 000".
_UNBREAKABLE_SPACE = re.compile(r" (?=[:;!?»])|(?<=«) |(?<=\d) (?=\d)")
# Joins words _wrap must not split: not white space to it, and turned back into a space after.
_GLUE = "\x00"
_SPACES = re.compile(r"[ \t]+")
# Only ASCII white space breaks a line: a no-break space in a name or a value stays one.
_BREAKABLE_SPACE = re.compile(r"[ \t\n\r\v\f]+")


class TemplateProblem(Exception):
    """A template cannot be rendered (missing variable or file, syntax error); raised before any send."""

    def __init__(
        self,
        message: str,
        *,
        template: str | None = None,
        variable: str | None = None,
        line: int | None = None,
    ) -> None:
        super().__init__(message)
        self.template = template
        self.variable = variable
        self.line = line


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """A rendered message: a one-line subject, a plain-text part and an HTML part."""

    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class _Pair:
    """The two compiled templates of one name."""

    text: Template
    html: Template


class _MissingVariable(UndefinedError):
    """An undefined value was used; remembers what was looked up on which object."""

    def __init__(
        self, message: str | None = None, *, owner: Any = missing, name: Any = None
    ) -> None:
        super().__init__(message)
        self.owner = owner
        self.name = name


class _StrictUndefined(StrictUndefined):
    """StrictUndefined whose error says which name was missing on which object."""

    __slots__ = ()

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: str | None = None,
        exc: type[TemplateRuntimeError] = UndefinedError,
    ) -> None:
        super().__init__(hint, obj, name, exc)
        # Jinja raises ``self._undefined_exception(message)``: bind the owner and name to it.
        self._undefined_exception = functools.partial(  # type: ignore[assignment]  # same call
            _MissingVariable, owner=obj, name=name
        )


def _autoescape(template_name: str | None) -> bool:
    """Return True for HTML templates: escape every value there, and nowhere else."""
    return template_name is not None and template_name.endswith(HTML_SUFFIX)


def _finalize(value: Any) -> Any:
    """Print None as nothing rather than "None" in a letter to a company head."""
    return "" if value is None else value


def reflow(text: str, width: int = TEXT_WIDTH) -> str:
    """Return ``text`` with each paragraph re-wrapped at ``width`` columns, "- " items kept apart."""
    # Paragraphs are separated by blank lines; inside one, a line break is a space, except
    # before a line starting with "- ", which starts a list item (continued with two spaces),
    # so templates can be written comfortably and still wrap well around long values.
    paragraphs: list[str] = []
    for block in _BLANK_LINE.split("\n".join(text.splitlines()).strip()):
        items: list[list[str]] = []
        for line in block.splitlines():
            stripped = line.strip()
            if not items or stripped.startswith("- "):
                items.append([stripped])
            else:
                items[-1].append(stripped)
        lines: list[str] = []
        for item in items:
            joined = " ".join(item)
            lines.extend(_wrap_cached(joined, width, "  " if joined.startswith("- ") else ""))
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


@functools.lru_cache(maxsize=512)
def _wrap_cached(text: str, width: int, indent: str) -> tuple[str, ...]:
    # Most paragraphs of a mailing are the same for every recipient: wrap each once.
    return tuple(_wrap(text, width, indent))


def _wrap(text: str, width: int, indent: str) -> list[str]:
    """Return ``text`` cut greedily into lines of at most ``width`` columns, words kept whole."""
    # Hand-rolled: textwrap took most of the render time (≈4,900 messages/s with it, ≈7,900 without).
    glued = _UNBREAKABLE_SPACE.sub(_GLUE, text.replace(_GLUE, " "))
    lines: list[str] = []
    current = ""
    for word in _BREAKABLE_SPACE.split(glued.strip()):
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= width:
            current = f"{current} {word}"
        else:
            lines.append(current.replace(_GLUE, " "))
            current = indent + word
    if current:
        lines.append(current.replace(_GLUE, " "))
    return lines


def one_line_subject(value: str) -> str:
    """Return ``value`` as a header-safe subject: line breaks and controls become one space, trimmed."""
    return _SPACES.sub(" ", single_line(value)).strip()


def programme_context(settings: Settings) -> dict[str, str]:
    """Return the ``programme`` variable of the templates: the programme settings, no secrets."""
    return {field: str(getattr(settings, field)) for field in PROGRAMME_FIELDS}


class MailTemplates:
    """The e-mail templates of one run: one environment, each template compiled once, then cached.

    Each template NAME is a pair of files, ``NAME.txt.j2`` and ``NAME.html.j2``, looked up first in
    the staff's override folder (``Settings.templates_dir``), then in the bundled ``templates/email/``.
    Both usually extend a shared layout (``_layout.txt.j2``, ``_layout.html.j2``) that carries the
    closing, the signature and the visible unsubscribe link; an override may replace a bundled
    file of the same name, and may still reach the bundled one as ``bundled/<file>`` (for instance
    ``{% extends "bundled/premier-courrier.txt.j2" %}`` to change a single block).

    The subject is the ``{% block subject %}`` of the text template (it may be inherited): rendered
    without escaping, then collapsed to one line, so no value can start a new mail header. The HTML
    template receives it as the variable ``subject`` (for ``<title>``).

    Context of the bundled ``premier-courrier`` (attributes or keys, both work):

    - ``company``: ``name``, ``commune`` (may be empty or None), ``source`` (optional: listing,
      sirene, referral, manual; where the address came from) — a ``Company`` row fits;
    - ``contact``: ``name`` (may be empty or None: the greeting becomes "Madame, Monsieur,");
    - ``programme``: ``authority_name``, ``programme_name``, ``officer_name``, ``officer_email``,
      ``officer_phone``, ``partner_name`` (with its article: "la Jeune Chambre Économique locale"),
      ``authority_contact``, ``dpo_email``, ``retention_months`` (the RGPD notice, ``_rgpd.*.j2``)
      — see ``programme_context(settings)``;
    - ``unsubscribe_url``: the signed link, shown in both parts (``render`` checks it is there).

    Variables are strict: a missing one, a missing template or a syntax error raises
    ``TemplateProblem`` (French message naming the template, the variable and the line) when
    rendering, so a flow that renders its first message before sending anything fails with nothing
    sent; ``check(name)`` compiles a pair and its layouts without needing a context, and
    ``check(name, context)`` renders it. ``None`` prints as an empty string. Templates are trusted code written by staff (the
    environment is not sandboxed): the override folder must only be writable by them.

    The bundled folder is found relative to this package: ``templates/`` sits next to
    ``synergie/`` at the top of the repository, which is where both are in a checkout and in an
    editable install (``pip install -e .``). A regular wheel install would put them side by side in
    site-packages too, provided the project declares the ``.j2`` files as package data.
    """

    def __init__(self, override_dir: Path | None = None) -> None:
        if not BUNDLED_TEMPLATES.is_dir():
            raise TemplateProblem(
                f"Les modèles d'e-mail fournis avec Synergie sont introuvables ({BUNDLED_TEMPLATES}) :"
                " réinstallez le projet depuis son dépôt (pip install -e .)."
            )
        self.override_dir = Path(override_dir).resolve() if override_dir is not None else None
        if self.override_dir is not None and not self.override_dir.is_dir():
            raise TemplateProblem(
                f"Le dossier de modèles personnalisés {self.override_dir} n'existe pas :"
                " corrigez SYNERGIE_TEMPLATES_DIR ou créez le dossier."
            )
        folders = [str(BUNDLED_TEMPLATES)]
        if self.override_dir is not None:
            folders.insert(0, str(self.override_dir))
        self._loader = ChoiceLoader(
            [
                FileSystemLoader(folders),
                PrefixLoader({BUNDLED_PREFIX: FileSystemLoader(str(BUNDLED_TEMPLATES))}),
            ]
        )
        self._env = Environment(
            loader=self._loader,
            undefined=_StrictUndefined,
            autoescape=_autoescape,
            finalize=_finalize,
            # Compiled once per run: a template edited during a run is picked up by the next run.
            auto_reload=False,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters["reflow"] = reflow
        self._pairs: dict[str, _Pair] = {}

    def names(self) -> list[str]:
        """Return the names that have both a text and an HTML template, sorted."""
        files = {
            name
            for name in self._env.list_templates(extensions=["j2"])
            if "/" not in name and not name.startswith("_")
        }
        return sorted(
            name.removesuffix(TEXT_SUFFIX)
            for name in files
            if name.endswith(TEXT_SUFFIX) and name.removesuffix(TEXT_SUFFIX) + HTML_SUFFIX in files
        )

    def render(self, name: str, context: Mapping[str, Any]) -> RenderedEmail:
        """Return the subject, text and HTML of template ``name``; raise TemplateProblem if any fails."""
        pair = self._pair(name)
        variables = dict(context)
        try:
            text, subject = self._render_text(pair.text, variables)
            html = pair.html.render({**variables, "subject": subject})
        except TemplateError as exc:
            raise self._problem(name, exc, variables) from exc
        if not subject:
            state = "est vide" if subject is not None else "est absent"
            raise TemplateProblem(
                f"Modèle « {name} » ({name}{TEXT_SUFFIX}) : le {{% block {SUBJECT_BLOCK} %}}, qui"
                f" donne le sujet du message, {state}.",
                template=name + TEXT_SUFFIX,
            )
        self._check_unsubscribe_link(name, variables, text, html)
        return RenderedEmail(subject=subject, text=text, html=html)

    def check(self, name: str, context: Mapping[str, Any] | None = None) -> None:
        """Raise TemplateProblem unless ``name`` renders with ``context``, or without one compiles."""
        # The preflight a flow runs before sending anything. With a context (the first
        # recipient's), it catches all that render would; without one, the pair and every
        # layout it extends or includes are compiled: unknown names, missing files and syntax
        # errors are caught, missing variables are not.
        if context is not None:
            self.render(name, context)
            return
        pair = self._pair(name)
        pending = [pair.text.name, pair.html.name]
        seen: set[str] = set()
        while pending:
            filename = pending.pop()
            if filename is None or filename in seen:
                continue
            seen.add(filename)
            try:
                source, path, _ = self._loader.get_source(self._env, filename)
                pending.extend(
                    meta.find_referenced_templates(self._env.parse(source, filename, path))
                )
                self._env.get_template(filename)
            except TemplateError as exc:
                raise self._problem(name, exc, {}) from exc

    def _pair(self, name: str) -> _Pair:
        """Return the compiled pair of ``name``, compiling it on first use only."""
        pair = self._pairs.get(name)
        if pair is None:
            pair = _Pair(text=self._load(name, TEXT_SUFFIX), html=self._load(name, HTML_SUFFIX))
            self._pairs[name] = pair
        return pair

    def _load(self, name: str, suffix: str) -> Template:
        """Return the compiled template file ``name + suffix`` or raise TemplateProblem."""
        filename = name + suffix
        try:
            return self._env.get_template(filename)
        except TemplateSyntaxError as exc:
            raise self._problem(name, exc, {}) from exc
        except TemplateNotFound as exc:
            available = ", ".join(self.names()) or "aucun"
            raise TemplateProblem(
                f"Modèle « {name} » : le fichier {filename} est introuvable"
                f" (modèles disponibles : {available}).",
                template=filename,
            ) from exc

    def _render_text(self, template: Template, variables: dict[str, Any]) -> tuple[str, str | None]:
        """Return the text part and the one-line subject (None without a subject block), in one pass."""
        # Low-level API (documented): after the root render the context holds every block of
        # the inheritance chain, so a subject inherited from a parent template is found too.
        context = template.new_context(variables)
        try:
            text = self._env.concat(template.root_render_func(context))  # type: ignore[attr-defined]
            chain = context.blocks.get(SUBJECT_BLOCK)
            subject = self._env.concat(chain[0](context)) if chain else None  # type: ignore[attr-defined]
        except Exception:
            # What Template.render does: rewrite the traceback so its frames are template lines.
            self._env.handle_exception()
        return text, None if subject is None else one_line_subject(subject)

    def _check_unsubscribe_link(
        self, name: str, variables: Mapping[str, Any], text: str, html: str
    ) -> None:
        """Raise TemplateProblem when an unsubscribe link was given but a part does not show it."""
        url = variables.get("unsubscribe_url")
        if not url:
            return
        url = str(url)
        for suffix, shown in ((TEXT_SUFFIX, url in text), (HTML_SUFFIX, str(escape(url)) in html)):
            if not shown:
                raise TemplateProblem(
                    f"Modèle « {name} » ({name}{suffix}) : le lien de désinscription n'apparaît pas"
                    " dans le message, or il est obligatoire : écrivez {{ unsubscribe_url }} ou"
                    " étendez le gabarit _layout.",
                    template=name + suffix,
                    variable="unsubscribe_url",
                )

    def _problem(
        self, name: str, exc: TemplateError, variables: Mapping[str, Any]
    ) -> TemplateProblem:
        """Return the French TemplateProblem for an error raised while compiling or rendering ``name``."""
        filename: str | None
        line: int | None
        if isinstance(exc, TemplateSyntaxError):
            filename, line = exc.filename, exc.lineno
        else:
            filename, line = _template_frame(exc)
        template = Path(filename).name if filename else None
        place = ", ".join(
            part
            for part in (
                template,
                "modèle personnalisé" if self._is_override(filename) else None,
                f"ligne {line}" if line else None,
            )
            if part
        )
        prefix = f"Modèle « {name} »" + (f" ({place})" if place else "")
        if isinstance(exc, TemplateSyntaxError):
            return TemplateProblem(
                f"{prefix} : erreur de syntaxe — {exc.message}.", template=template, line=line
            )
        if isinstance(exc, TemplateNotFound):
            return TemplateProblem(
                f"{prefix} : le modèle « {exc.name} » qu'il utilise est introuvable.",
                template=template,
                line=line,
            )
        if isinstance(exc, UndefinedError):
            variable = _variable_path(exc, variables)
            return TemplateProblem(
                f"{prefix} : la variable « {variable} » n'est pas fournie. Ajoutez-la au contexte"
                " d'envoi, ou retirez-la du modèle.",
                template=template,
                variable=variable,
                line=line,
            )
        return TemplateProblem(
            f"{prefix} : {exc.message or type(exc).__name__}.", template=template, line=line
        )

    def _is_override(self, filename: str | None) -> bool:
        """Return True when ``filename`` lies in the staff's override folder."""
        if self.override_dir is None or not filename:
            return False
        return Path(filename).resolve().is_relative_to(self.override_dir)


def _template_frame(exc: BaseException) -> tuple[str | None, int | None]:
    """Return the template file and line where ``exc`` was raised, from Jinja's rewritten traceback."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith(".j2"):
            return frame.filename, frame.lineno
    return None, None


def _variable_path(exc: UndefinedError, variables: Mapping[str, Any]) -> str:
    """Return the dotted name of the missing variable, e.g. ``company.commune``."""
    if not isinstance(exc, _MissingVariable):
        return exc.message or "?"
    if exc.owner is missing:
        return str(exc.name)
    # Jinja only knows the owner object: find which context variable it is (one level deep).
    for key, value in variables.items():
        if value is exc.owner:
            return f"{key}.{exc.name}"
    return f"{type(exc.owner).__name__}.{exc.name}"


BUNDLED_SMS_TEMPLATES = BUNDLED_TEMPLATES.parent / "sms"


class SmsTemplates:
    """SMS texts: ``templates/sms/NAME.txt.j2`` (or the override folder's ``sms/``), strict, one line."""

    def __init__(self, override_dir: Path | None = None) -> None:
        folders = [str(override_dir / "sms")] if override_dir is not None else []
        self._env = Environment(
            loader=FileSystemLoader([*folders, str(BUNDLED_SMS_TEMPLATES)]),
            undefined=_StrictUndefined,
            autoescape=False,
            auto_reload=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(self, name: str, context: Mapping[str, Any]) -> str:
        """The SMS text, white space collapsed to single spaces; TemplateProblem when it cannot render."""
        try:
            text = self._env.get_template(f"{name}.txt.j2").render(context)
        except TemplateNotFound as exc:
            raise TemplateProblem(
                f"Le modèle de SMS « {name}.txt.j2 » est introuvable.", template=name
            ) from exc
        except UndefinedError as exc:
            raise TemplateProblem(f"Modèle de SMS « {name} » : {exc}", template=name) from exc
        return " ".join(text.split())
