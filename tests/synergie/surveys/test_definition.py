"""Survey files: the bundled one is valid and French; a wrong file is refused naming each line."""

from __future__ import annotations

from pathlib import Path

import pytest

from synergie.surveys.definition import (
    QuestionKind,
    SurveyDefinition,
    SurveyFileError,
    available_surveys,
    load_survey,
    parse_survey,
)


def test_the_bundled_follow_up_survey_asks_what_the_issue_lists() -> None:
    survey = load_survey("suivi-rencontre")
    assert survey.name == "suivi-rencontre" and survey.title == "Votre avis sur la rencontre"
    kinds = {q.id: q.kind for q in survey.questions}
    assert kinds == {
        "satisfaction": QuestionKind.RATING,
        "utile": QuestionKind.MULTIPLE,
        "sujets": QuestionKind.TEXT,
        "club": QuestionKind.SINGLE,
        "accueil": QuestionKind.YES_NO,
        "synergies": QuestionKind.TEXT,
    }
    assert "club" in survey.question("club").label
    assert survey.question("satisfaction").required and not survey.question("accueil").required
    # Kept in the database as the file said it, and read back identical.
    assert SurveyDefinition.from_stored(survey.stored()) == survey


WRONG = """\
titre: Après la rencontre
questions:
  - id: note
    type: notation
    question: Votre note
  - id: club
    type: choix-unique
    question: Un club ?
    obligatoire: peut-être
    couleur: rouge
  - type: texte
"""


def test_a_wrong_file_is_refused_with_each_problem_on_its_line() -> None:
    with pytest.raises(SurveyFileError) as caught:
        parse_survey(WRONG, name="apres", source="apres.yaml")
    message = str(caught.value)
    assert message.startswith("Le questionnaire apres.yaml n'est pas valide :")
    assert (
        "ligne 4 : questions › n° 1 (note) › type : « notation » n'est pas un type connu" in message
    )
    assert "ligne 9 : questions › n° 2 (club) › obligatoire : doit valoir oui ou non" in message
    assert "ligne 10 : questions › n° 2 (club) › couleur : champ inconnu" in message
    assert "ligne 11 : questions › n° 3 › id : champ obligatoire manquant" in message
    assert "il en faut au moins" not in message  # the list is not short, its items are wrong


def test_rules_beyond_the_shape_name_their_line_too() -> None:
    text = """\
titre: T
questions:
  - id: a
    type: choix-unique
    question: Un seul choix
    options: [Oui]
  - id: a
    type: note
    question: Encore a
    options: [x, y]
  - id: n
    type: nombre
    question: Combien ?
    min: 10
    max: 2
"""
    with pytest.raises(SurveyFileError) as caught:
        parse_survey(text, name="t", source="t.yaml")
    message = str(caught.value)
    assert (
        "ligne 6 : questions › n° 1 (a) › options : une question « choix-unique » propose au moins deux options"
        in message
    )
    assert (
        "ligne 7 : questions › n° 2 (a) › id : l'identifiant « a » est déjà celui de la question n° 1"
        in message
    )
    assert (
        "ligne 10 : questions › n° 2 (a) › options : une question « note » ne propose pas d'options"
        in message
    )
    assert "ligne 14 : questions › n° 3 (n) › min : min (10) est plus grand que max (2)" in message


def test_broken_yaml_and_repeated_keys_name_their_line() -> None:
    with pytest.raises(SurveyFileError, match=r"n'est pas un YAML valide, ligne 3"):
        parse_survey("titre: T\nquestions:\n\t- id: a\n", name="t", source="t.yaml")
    with pytest.raises(SurveyFileError, match=r"ligne 2 : titre : clé répétée"):
        parse_survey(
            "titre: T\ntitre: U\nquestions:\n  - {id: a, type: texte, question: Q}\n",
            name="t", source="t.yaml",
        )  # fmt: skip
    with pytest.raises(
        SurveyFileError, match=r"ligne 1 : le fichier doit décrire un questionnaire"
    ):
        parse_survey("- juste une liste\n", name="t", source="t.yaml")


def test_staff_override_folder_comes_first_and_adds_surveys(tmp_path: Path) -> None:
    folder = tmp_path / "surveys"
    folder.mkdir()
    (folder / "suivi-rencontre.yaml").write_text(
        "titre: Notre version\nquestions:\n  - {id: avis, type: texte, question: 'Votre avis ?'}\n",
        encoding="utf-8",
    )
    (folder / "atelier.yaml").write_text(
        "titre: Atelier\nquestions:\n  - {id: venu, type: oui-non, question: 'Venu ?', obligatoire: oui}\n",
        encoding="utf-8",
    )
    assert load_survey("suivi-rencontre", tmp_path).title == "Notre version"
    assert load_survey("atelier", tmp_path).question("venu").required
    assert {"atelier", "suivi-rencontre"} <= set(available_surveys(tmp_path))
    with pytest.raises(SurveyFileError, match="Aucun questionnaire « inconnu »"):
        load_survey("inconnu", tmp_path)
