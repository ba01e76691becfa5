"""MailTemplates: the bundled first mailing, escaping, one-line subjects, strict variables, overrides."""

from __future__ import annotations

import copy
import html
import os
import pickle
import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from jinja2 import FileSystemLoader
from markupsafe import escape
from pydantic import SecretStr

from channels.base import OutgoingEmail
from channels.mime import compose_email
from models.tables import Company, Contact
from synergie.messaging.rendering import (
    PROGRAMME_FIELDS,
    MailTemplates,
    RenderedEmail,
    TemplateProblem,
    programme_context,
    reflow,
)
from synergie.settings import Settings

UNSUBSCRIBE_URL = "https://eit.example.org/desinscription/eyJjIjoiM2Y5YSJ9?s=Zx3k9Q&v=1"
SCRIPT_NAME = 'Menuiserie "Père" & Fils <script>alert(1)</script>'
VOID_ELEMENTS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)


@pytest.fixture(scope="module")
def templates() -> MailTemplates:
    return MailTemplates()


def make_context(
    *, company: str = "Cartonnerie de la Côte", commune: str | None = "Nuits-Saint-Georges",
    contact: str | None = "Claire Martin",
) -> dict[str, Any]:  # fmt: skip
    """A context for premier-courrier, as the mailing flow builds it."""
    return {
        "company": {"name": company, "commune": commune},
        "contact": {"name": contact},
        "programme": programme_context(Settings()),
        "unsubscribe_url": UNSUBSCRIBE_URL,
    }


def flat(text: str) -> str:
    """Return ``text`` with every run of white space made one space (undoes line wrapping)."""
    return re.sub(r"\s+", " ", text)


class TagBalance(HTMLParser):
    """Checks that every element is closed in order, and collects the visible text and links."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs.extend(value or "" for name, value in attrs if name == "href")
        if tag not in VOID_ELEMENTS:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
        else:
            self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(html: str) -> TagBalance:
    """Return the parser after feeding it ``html`` entirely."""
    parser = TagBalance()
    parser.feed(html)
    parser.close()
    return parser


def write_pair(folder: Path, name: str, *, text: str, html: str) -> None:
    """Write the text and HTML templates of ``name`` into ``folder``."""
    (folder / f"{name}.txt.j2").write_text(text, encoding="utf-8")
    (folder / f"{name}.html.j2").write_text(html, encoding="utf-8")


def test_first_mailing_says_what_the_brief_asks_for(templates: MailTemplates) -> None:
    company = Company(name="Cartonnerie de la Côte", name_key="x", commune="Nuits-Saint-Georges")
    contact = Contact(company_id=1, identity="c@example.org", name="Claire Martin")
    settings = Settings()
    context = {
        "company": company,
        "contact": contact,
        "programme": programme_context(settings),
        "unsubscribe_url": UNSUBSCRIBE_URL,
    }

    rendered = templates.render("premier-courrier", context)

    assert isinstance(rendered, RenderedEmail)
    assert "Cartonnerie de la Côte" in rendered.subject
    assert "Économie positive" in rendered.subject
    text = flat(rendered.text)
    for expected in (
        "Bonjour Claire Martin,",
        "écologie industrielle et territoriale",
        "chutes de carton",
        "gratuit",
        "Chaque trimestre",
        "visite de son site",
        "une rencontre d'une heure dans votre entreprise",
        f"Un bénévole de {settings.partner_name} vous appellera dans les prochains jours",
        "répondre directement à ce message",
        settings.officer_name,
        settings.authority_name,
        settings.officer_phone,
        settings.officer_email,
        "Vous ne souhaitez plus recevoir nos messages ? Se désinscrire",
    ):
        assert expected in text, expected
        assert expected in flat(" ".join(parse_html(rendered.html).text)), expected
    # The unsubscribe URL is spelled out on a line of its own, whole, so it stays clickable.
    assert UNSUBSCRIBE_URL in rendered.text.splitlines()


def test_text_part_is_real_plain_text_wrapped_at_72_columns(templates: MailTemplates) -> None:
    rendered = templates.render("premier-courrier", make_context())

    assert not re.search(r"<[a-z/!]|&nbsp;|&amp;|&#", rendered.text)
    assert rendered.text.endswith("\n")
    too_long = [line for line in rendered.text.splitlines() if len(line) > 72 and " " in line]
    assert too_long == []
    assert "\n\n\n" not in rendered.text


def test_html_escapes_the_company_name_once_and_text_shows_it_verbatim(
    templates: MailTemplates,
) -> None:
    rendered = templates.render("premier-courrier", make_context(company=SCRIPT_NAME))

    assert "<script" not in rendered.html
    assert "&#34;Père&#34; &amp; Fils &lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert str(escape(SCRIPT_NAME)) in rendered.html
    # Decoded by a parser, the visible text holds the name exactly: escaped once, not twice.
    assert SCRIPT_NAME in flat(" ".join(parse_html(rendered.html).text))
    # The text part is never escaped; only line wrapping may have moved its spaces.
    assert SCRIPT_NAME in flat(rendered.text)
    assert "&amp;" not in rendered.text
    assert SCRIPT_NAME in rendered.subject


@pytest.mark.parametrize("brk", ["\r\n", "\n", "\r", "\u2028", "\x85", "\x0b", "\x0c", "\r\n\t"])
def test_a_line_break_in_a_name_never_reaches_the_headers(
    templates: MailTemplates, brk: str
) -> None:
    name = f"Scierie Martin{brk}Bcc: victim@example.com"

    rendered = templates.render("premier-courrier", make_context(company=name))

    assert rendered.subject.splitlines() == [rendered.subject]
    assert not re.search(r"[\x00-\x1f\x7f\x85\u2028\u2029]", rendered.subject)
    assert "Scierie Martin Bcc: victim@example.com" in rendered.subject
    raw = compose_email(
        OutgoingEmail(
            key="k",
            to="claire@example.org",
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            message_id="<1@eit.example.org>",
        ),
        sender="Économie positive <eit@example.org>",
        date=datetime(2025, 11, 3, 9, 0, tzinfo=UTC),
    )
    message = message_from_bytes(raw, policy=policy.default)
    assert message["Bcc"] is None
    assert "Bcc: victim@example.com" in str(message["Subject"])


def test_accents_survive_in_every_part(templates: MailTemplates) -> None:
    context = make_context(company="Scierie Émile Bérard & Cie", commune="Échevronne")
    context["contact"]["name"] = "Hélène Dubœuf"

    rendered = templates.render("premier-courrier", context)

    assert "Scierie Émile Bérard & Cie" in rendered.subject
    assert "Économie positive" in rendered.subject
    assert "Bonjour Hélène Dubœuf," in rendered.text
    assert "Échevronne" in rendered.text
    assert "Scierie Émile Bérard &amp; Cie" in rendered.html
    assert "Bonjour Hélène Dubœuf," in rendered.html
    assert "Communauté de communes" in rendered.html  # literal UTF-8, not entities


@pytest.mark.parametrize("contact", ["", None, "   "])
def test_no_contact_name_means_madame_monsieur(
    templates: MailTemplates, contact: str | None
) -> None:
    rendered = templates.render("premier-courrier", make_context(contact=contact))

    assert rendered.text.startswith("Madame, Monsieur,\n\n")
    assert ">Madame, Monsieur,</p>" in rendered.html
    assert "Bonjour" not in rendered.text + rendered.html


def test_an_unknown_commune_prints_nothing_rather_than_none(templates: MailTemplates) -> None:
    rendered = templates.render("premier-courrier", make_context(commune=None))

    assert "None" not in rendered.text + rendered.html
    assert "Cartonnerie de la Côte." in flat(rendered.text)


def test_html_is_well_formed_and_self_contained(templates: MailTemplates) -> None:
    html = templates.render("premier-courrier", make_context(company=SCRIPT_NAME)).html

    parser = parse_html(html)

    assert parser.errors == []
    assert parser.open == []
    assert UNSUBSCRIBE_URL in parser.hrefs  # the & of the URL was escaped, and decodes back
    assert '<html lang="fr">' in html
    assert "Se désinscrire</a>" in html
    assert not re.search(r"<(img|link|style|script|table|iframe)\b|\ssrc=|\sclass=", html)
    assert all("style=" in tag for tag in re.findall(r"<p\b[^>]*>", html))


REQUIRED = [
    "company",
    "company.name",
    "company.commune",
    "contact",
    "contact.name",
    "programme",
    *(f"programme.{field}" for field in PROGRAMME_FIELDS),
    "unsubscribe_url",
]


@pytest.mark.parametrize("path", REQUIRED)
def test_each_documented_variable_is_required_and_named(
    templates: MailTemplates, path: str
) -> None:
    context = copy.deepcopy(make_context())
    *parents, leaf = path.split(".")
    holder = context
    for key in parents:
        holder = holder[key]
    del holder[leaf]

    with pytest.raises(TemplateProblem) as caught:
        templates.render("premier-courrier", context)

    assert caught.value.variable == path
    assert f"« {path} »" in str(caught.value)
    assert "premier-courrier" in str(caught.value)
    assert caught.value.template is not None and caught.value.line is not None


def test_a_variable_missing_only_from_the_html_part_fails_the_whole_render(tmp_path: Path) -> None:
    write_pair(
        tmp_path,
        "relance",
        text='{% extends "_layout.txt.j2" %}{% block subject %}Relance{% endblock %}'
        "{% block body %}Madame, Monsieur,{% endblock %}",
        html='{% extends "_layout.html.j2" %}{% block body %}<p>{{ date_visite }}</p>{% endblock %}',
    )

    with pytest.raises(TemplateProblem) as caught:
        MailTemplates(tmp_path).render("relance", make_context())

    assert caught.value.variable == "date_visite"
    assert caught.value.template == "relance.html.j2"
    assert "modèle personnalisé" in str(caught.value)


def test_an_override_replaces_the_bundled_template_and_keeps_the_bundled_layout(
    tmp_path: Path,
) -> None:
    write_pair(
        tmp_path,
        "premier-courrier",
        text='{% extends "_layout.txt.j2" %}'
        "{% block subject %}Invitation pour {{ company.name }}{% endblock %}"
        "{% block body %}Texte de la collectivité pour {{ company.name }}.{% endblock %}",
        html='{% extends "_layout.html.j2" %}'
        "{% block body %}<p>Texte HTML pour {{ company.name }}.</p>{% endblock %}",
    )
    bundled = MailTemplates().render("premier-courrier", make_context())

    rendered = MailTemplates(tmp_path).render("premier-courrier", make_context())

    assert rendered.subject == "Invitation pour Cartonnerie de la Côte"
    assert "Texte de la collectivité pour Cartonnerie de la Côte." in rendered.text
    assert "chutes de carton" not in rendered.text + rendered.html
    assert "Texte HTML pour Cartonnerie de la Côte." in rendered.html
    # Closing, signature and unsubscribe footer come from the bundled layouts, as in the bundle.
    for part in ("text", "html"):
        ours, theirs = getattr(rendered, part), getattr(bundled, part)
        assert ours.partition("Bien cordialement,")[2] == theirs.partition("Bien cordialement,")[2]
        assert ours.count("Bien cordialement,") == 1


def test_an_override_can_extend_the_bundled_template_of_the_same_name(tmp_path: Path) -> None:
    write_pair(
        tmp_path,
        "premier-courrier",
        text='{% extends "bundled/premier-courrier.txt.j2" %}'
        "{% block closing %}Avec mes salutations les meilleures,{% endblock %}",
        html='{% extends "bundled/premier-courrier.html.j2" %}',
    )

    rendered = MailTemplates(tmp_path).render("premier-courrier", make_context())

    assert rendered.subject.startswith("Proposition de rencontre pour Cartonnerie de la Côte")
    assert "Avec mes salutations les meilleures," in rendered.text
    assert "Bien cordialement," not in rendered.text
    assert "chutes de carton" in flat(rendered.text)


def test_templates_are_compiled_once_per_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An overridden text layout too: a layout is reached through {% extends %} at every render.
    (tmp_path / "_layout.txt.j2").write_text(
        "Layout 1 {% block body %}{% endblock %} {{ unsubscribe_url }}"
    )
    write_pair(
        tmp_path,
        "note",
        text='{% extends "_layout.txt.j2" %}{% block subject %}Version 1{% endblock %}',
        html='{% extends "_layout.html.j2" %}',
    )
    reads: list[str] = []
    get_source = FileSystemLoader.get_source

    def counting_get_source(self: FileSystemLoader, environment: Any, name: str) -> Any:
        reads.append(name)
        return get_source(self, environment, name)

    monkeypatch.setattr(FileSystemLoader, "get_source", counting_get_source)
    templates = MailTemplates(tmp_path)
    first = templates.render("note", make_context())
    assert sorted(reads) == ["_layout.html.j2", "_layout.txt.j2", "note.html.j2", "note.txt.j2"]

    for source in (tmp_path / "note.txt.j2", tmp_path / "_layout.txt.j2"):
        source.write_text(source.read_text().replace(" 1", " 2"))
        later = source.stat().st_mtime + 10  # beyond any file system's mtime granularity
        os.utime(source, (later, later))
    renders = [templates.render("note", make_context()) for _ in range(200)]

    assert len(reads) == 4
    assert set(renders) == {first}
    assert (first.subject, first.text[:8]) == ("Version 1", "Layout 1")
    fresh = MailTemplates(tmp_path).render("note", make_context())
    assert (fresh.subject, fresh.text[:8]) == ("Version 2", "Layout 2")


def test_none_prints_as_nothing_in_any_template(tmp_path: Path) -> None:
    write_pair(
        tmp_path,
        "note",
        text='{% extends "_layout.txt.j2" %}{% block subject %}Sujet{% endblock %}'
        "{% block body %}Commune : [{{ company.commune }}]{% endblock %}",
        html='{% extends "_layout.html.j2" %}{% block body %}<p>[{{ company.commune }}]</p>'
        "{% endblock %}",
    )

    rendered = MailTemplates(tmp_path).render("note", make_context(commune=None))

    assert "Commune : []" in rendered.text
    assert "<p>[]</p>" in rendered.html


def test_names_lists_complete_pairs_only(tmp_path: Path, templates: MailTemplates) -> None:
    write_pair(tmp_path, "invitation", text="x", html="x")
    (tmp_path / "brouillon.txt.j2").write_text("sans version HTML")

    assert "premier-courrier" in templates.names()
    assert not any(name.startswith("_") for name in templates.names())
    names = MailTemplates(tmp_path).names()
    assert {"invitation", "premier-courrier"} <= set(names) and "brouillon" not in names
    assert names == sorted(names)


def test_an_unknown_template_is_a_template_problem(templates: MailTemplates) -> None:
    with pytest.raises(TemplateProblem, match=r"« premier-courier ».*premier-courrier[,)]"):
        templates.render("premier-courier", make_context())


def test_a_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    write_pair(
        tmp_path,
        "invitation",
        text='{% extends "_layout.txt.j2" %}\n{% block subject %}Sujet{% endblock %}\n'
        "{% block body %}\n{% if company.name %}\n{% endblock %}",
        html="<p></p>",
    )

    with pytest.raises(TemplateProblem) as caught:
        MailTemplates(tmp_path).render("invitation", make_context())

    assert caught.value.template == "invitation.txt.j2"
    assert caught.value.line == 5
    assert "erreur de syntaxe" in str(caught.value)


def test_check_without_context_compiles_the_pair_and_its_layouts(
    tmp_path: Path, templates: MailTemplates
) -> None:
    templates.check("premier-courrier")
    templates.check("premier-courrier", make_context())
    write_pair(
        tmp_path,
        "invitation",
        text='{% extends "_layout.txt.j2" %}{% block subject %}Sujet{% endblock %}',
        html='{% extends "_gabarit.html.j2" %}',
    )
    (tmp_path / "_layout.txt.j2").write_text("{% block body %}{% endblock %}\n{% endif %}")
    overrides = MailTemplates(tmp_path)

    with pytest.raises(TemplateProblem, match="« _gabarit.html.j2 » qu'il utilise est introuvable"):
        overrides.check("invitation")
    (tmp_path / "invitation.html.j2").write_text('{% extends "_layout.html.j2" %}')
    with pytest.raises(TemplateProblem) as caught:
        MailTemplates(tmp_path).check("invitation")
    assert (caught.value.template, caught.value.line) == ("_layout.txt.j2", 2)
    assert "modèle personnalisé" in str(caught.value)
    with pytest.raises(TemplateProblem, match="premier-courier"):
        templates.check("premier-courier")


def test_a_missing_subject_block_is_a_template_problem(tmp_path: Path) -> None:
    write_pair(
        tmp_path, "invitation", text='{% extends "_layout.txt.j2" %}', html="{{ unsubscribe_url }}"
    )

    with pytest.raises(TemplateProblem, match=r"block subject"):
        MailTemplates(tmp_path).render("invitation", make_context())


def test_a_template_that_drops_the_unsubscribe_link_is_refused(tmp_path: Path) -> None:
    write_pair(
        tmp_path,
        "invitation",
        text='{% extends "_layout.txt.j2" %}{% block subject %}Sujet{% endblock %}',
        html="<p>Sans lien de désinscription</p>",
    )

    with pytest.raises(TemplateProblem) as caught:
        MailTemplates(tmp_path).render("invitation", make_context())

    assert caught.value.template == "invitation.html.j2"
    assert caught.value.variable == "unsubscribe_url"


def test_a_missing_override_folder_is_reported(tmp_path: Path) -> None:
    with pytest.raises(TemplateProblem, match="SYNERGIE_TEMPLATES_DIR"):
        MailTemplates(tmp_path / "absent")


def test_template_problem_survives_pickling(templates: MailTemplates) -> None:
    context = make_context()
    del context["unsubscribe_url"]
    with pytest.raises(TemplateProblem) as caught:
        templates.check("premier-courrier", context)

    copied = pickle.loads(pickle.dumps(caught.value))

    assert str(copied) == str(caught.value)
    assert (copied.template, copied.variable, copied.line) == (
        caught.value.template,
        caught.value.variable,
        caught.value.line,
    )


def test_programme_context_holds_the_programme_settings_and_nothing_else() -> None:
    settings = Settings(officer_name="Anne Parizot", smtp_password=SecretStr("secret"))

    context = programme_context(settings)

    assert set(context) == set(PROGRAMME_FIELDS)
    assert context["officer_name"] == "Anne Parizot"
    assert "secret" not in repr(context)


def test_reflow_wraps_paragraphs_without_breaking_french_punctuation_numbers_or_urls() -> None:
    sentence = (
        "Vous pouvez répondre directement à ce message ou appeler la chargée de mission au "
        "03 53 01 00 00 : elle vous rappellera. Et la démarche « Économie positive » ? "
    )
    url = "https://eit.example.org/" + "x" * 90
    paragraph = sentence * 4 + f"Lien : {url}"
    text = (
        f"Madame, Monsieur,\n\n\n{paragraph}\n\nCe que nous proposons :\n- une rencontre\n"
        "- une visite de site à chaque rencontre trimestrielle, chez une entreprise différente"
    )

    lines = reflow(text).splitlines()

    assert lines[:2] == ["Madame, Monsieur,", ""]
    assert all(len(line) <= 72 or " " not in line for line in lines)
    assert not [line for line in lines if re.match(r"[:;!?»]", line) or line.endswith("«")]
    assert all("03 53 01 00 00" in line for line in lines if "03 53" in line)
    assert url in lines
    assert lines[-3:] == [
        "- une rencontre",
        "- une visite de site à chaque rencontre trimestrielle, chez une",
        "  entreprise différente",
    ]
    assert flat(reflow(paragraph)) == flat(paragraph).strip()


def test_sms_templates_are_strict_and_one_line(tmp_path: Path) -> None:
    from synergie.messaging.rendering import SmsTemplates, TemplateProblem

    (tmp_path / "sms").mkdir()
    (tmp_path / "sms" / "essai.txt.j2").write_text(
        "Bonjour {{ nom }},\n\n  {{ n }} appels aujourd'hui.\n"
    )
    templates = SmsTemplates(tmp_path)
    assert (
        templates.render("essai", {"nom": "Élise", "n": 5})
        == "Bonjour Élise, 5 appels aujourd'hui."
    )
    with pytest.raises(TemplateProblem, match="nom"):
        templates.render("essai", {"n": 5})
    with pytest.raises(TemplateProblem, match="introuvable"):
        templates.render("absent", {})


@pytest.mark.parametrize(
    ("source", "origin"),
    [
        ("sirene", "du répertoire SIRENE de l'Insee"),
        ("listing", "transmis par un partenaire du programme"),
        ("referral", "qui nous a recommandé de vous contacter"),
    ],
)
def test_the_first_message_carries_the_rgpd_article_14_notice(
    source: str, origin: str, tmp_path: Path
) -> None:
    # Issue 9: premier-courrier said nothing of who holds the data, why, whence, how long, rights.
    from synergie.mailing.campaigns import MailComposer, Recipient

    settings = Settings(
        data_dir=tmp_path, authority_name="Communauté de communes du Pays de Nuits",
        authority_contact="3 rue de la Mairie, 21700 Nuits-Saint-Georges",
        dpo_email="dpo@pays-de-nuits.example", retention_months=24,
    )  # fmt: skip
    composer = MailComposer(
        settings=settings, templates=MailTemplates(), template="premier-courrier"
    )
    recipient = Recipient(
        1, "0" * 32, 1, "c.martin@example.org", "Claire Martin", "Cartonnages", "Nuits", source
    )
    rendered = composer.render(recipient)
    for part in (flat(rendered.text), flat(html.unescape(rendered.html)).replace("\xa0", " ")):
        for element in (
            "responsable du traitement",
            "Communauté de communes du Pays de Nuits",  # who holds the data
            "3 rue de la Mairie, 21700 Nuits-Saint-Georges",  # and how to reach them
            "« Économie positive »",  # why
            "mission d'intérêt public",  # on which legal basis
            "article 6.1.e du RGPD",
            origin,  # where the address came from
            "24 mois",  # how long
            "vous opposer",  # how to object
            "demander l'accès à vos données",  # and ask for access
            "dpo@pays-de-nuits.example",
            "CNIL",
        ):
            assert element in part, (element, part[-900:])


def test_staff_can_rewrite_the_rgpd_notice(tmp_path: Path) -> None:
    (tmp_path / "_rgpd.txt.j2").write_text(
        "Données : écrivez à {{ programme.dpo_email or programme.officer_email }}.\n"
    )
    (tmp_path / "_rgpd.html.j2").write_text("<p>Données : notice du service juridique.</p>\n")
    rendered = MailTemplates(tmp_path).render("premier-courrier", make_context())
    assert "Données : écrivez à eit@example.org." in rendered.text
    assert "notice du service juridique" in rendered.html
    assert "mission d'intérêt public" not in rendered.text + rendered.html
