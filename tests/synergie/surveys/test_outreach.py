"""After a held meeting: one invitation per attending contact, one reminder to who has not answered, closed after 30 days."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from models import Contact, Meeting, MeetingStatus, Survey, SurveyRecipient, SurveyResponse
from models.db import write_transaction
from synergie.messaging.links import InvalidToken
from synergie.messaging.optouts import opt_out, suppress
from synergie.settings import Settings
from synergie.surveys.answers import check_form
from synergie.surveys.definition import SurveyDefinition
from synergie.surveys.outreach import (
    SurveyError,
    SurveyRun,
    read_survey_token,
    run_meeting_survey,
    survey_url,
)
from synergie.surveys.responses import StaleAnswer, SurveyClosed, save_response
from synergie.surveys.results import survey_results, write_results_csv
from tests.synergie.surveys.conftest import HELD_AT, Held

DAY = timedelta(days=1)


def _answer(held: Held, contact: Contact, answers: dict[str, object], *, version: int = 0,
            at=HELD_AT + DAY):  # type: ignore[no-untyped-def]  # fmt: skip
    with write_transaction(held.engine) as connection:
        session = Session(bind=connection, expire_on_commit=False)
        survey = session.exec(select(Survey)).one()
        saved = save_response(session=session, survey=survey, contact=contact, answers=answers,
                              expected_version=version, now=at)  # fmt: skip
        session.close()
    return saved


def test_each_attending_contact_is_invited_once_and_a_rerun_sends_nothing(held: Held) -> None:
    first = held.run(HELD_AT + timedelta(hours=1))
    assert isinstance(first, SurveyRun) and first.opened and first.invitations == 4
    invited = {m.contact_id for m in held.messages("-invitation")}
    expected = {c.id for company in held.came for c in held.contacts(company)}
    assert invited == expected and len(expected) == 4
    assert not {c.id for c in held.contacts(held.absent[0])} & invited
    again = held.run(HELD_AT + timedelta(hours=2))
    assert (again.opened, again.invitations, again.reminders) == (False, 0, 0)  # type: ignore[attr-defined]
    assert len(held.messages()) == 4
    [message] = [m for m in held.messages() if m.contact_id == held.contacts(held.came[0])[0].id]
    assert message.context["subject"].startswith("Votre avis sur la rencontre du ")  # type: ignore[index]
    assert "/suivi/v1." in message.context["text"]  # type: ignore[index]
    with held.session() as session:
        survey = session.exec(select(Survey)).one()
        assert survey.name == "suivi-rencontre" and survey.closes_at == survey.opened_at + 30 * DAY


def test_opted_out_and_suppressed_contacts_get_nothing(held: Held) -> None:
    refusing, suppressed = held.contacts(held.came[0])[0], held.contacts(held.came[1])[0]
    with held.session() as session:
        opt_out(session=session, contact=session.get(Contact, refusing.id), channels=["email"],  # type: ignore[arg-type, list-item]
                source="portal", now=HELD_AT)  # fmt: skip
        suppress(session.connection(), address=suppressed.email or "", channel="email",
                 source="staff", now=HELD_AT, actor="staff:test")  # fmt: skip
        session.commit()
    run = held.run(HELD_AT + timedelta(hours=1))
    assert run.invitations == 2  # type: ignore[attr-defined]
    assert {m.contact_id for m in held.messages()} & {refusing.id, suppressed.id} == set()


def test_one_reminder_after_seven_days_only_to_who_has_not_answered(held: Held) -> None:
    held.run(HELD_AT + timedelta(hours=1))
    answering = held.contacts(held.came[0])[0]
    _answer(held, answering, {"satisfaction": 5, "club": "Oui, comme membre"})
    assert held.run(HELD_AT + 6 * DAY).reminders == 0  # type: ignore[attr-defined]
    reminded = held.run(HELD_AT + 7 * DAY + timedelta(hours=2))
    assert reminded.reminders == 3  # type: ignore[attr-defined]
    reminders = held.messages("-rappel")
    assert answering.id not in {m.contact_id for m in reminders} and len(reminders) == 3
    assert reminders[0].context["subject"].startswith("Rappel : votre avis")  # type: ignore[index]
    assert held.run(HELD_AT + 8 * DAY).reminders == 0  # type: ignore[attr-defined]
    assert len(held.messages("-rappel")) == 3


def test_the_survey_closes_after_thirty_days_and_refuses_answers(held: Held) -> None:
    held.run(HELD_AT + timedelta(hours=1))
    closed = held.run(HELD_AT + 31 * DAY)
    assert closed.closed and closed.invitations == 0  # type: ignore[attr-defined]
    with held.session() as session:
        assert session.exec(select(Survey)).one().closed_at is not None
    with pytest.raises(SurveyClosed, match="clos"):
        _answer(held, held.contacts(held.came[0])[0], {"satisfaction": 4}, at=HELD_AT + 2 * DAY)
    assert held.run(HELD_AT + 40 * DAY) == SurveyRun(held.meeting_id, closed.survey_id)  # type: ignore[attr-defined]


def test_an_answer_is_updated_in_place_and_an_older_page_never_overwrites_it(held: Held) -> None:
    held.run(HELD_AT + timedelta(hours=1))
    contact = held.contacts(held.came[0])[0]
    assert _answer(held, contact, {"satisfaction": 3}).version == 1
    saved = _answer(held, contact, {"satisfaction": 5}, version=1)
    assert (saved.version, saved.updated) == (2, True)
    with pytest.raises(StaleAnswer) as stale:  # a second tab, opened before the first save
        _answer(held, contact, {"satisfaction": 1}, version=1)
    assert stale.value.current is not None and stale.value.current.answers == {"satisfaction": 5}
    with pytest.raises(StaleAnswer):  # a first answer from another tab, after this one
        _answer(held, contact, {"satisfaction": 2}, version=0)
    with held.session() as session:
        [response] = session.exec(select(SurveyResponse)).all()
        assert (response.version, response.answers) == (2, {"satisfaction": 5})


def test_a_meeting_not_held_has_no_survey(engine: sa.Engine, settings: Settings) -> None:
    from synergie.messaging.rendering import MailTemplates
    from tests.synergie.meetings.conftest import build_territory

    territory = build_territory(engine, settings)
    with Session(engine) as session, pytest.raises(SurveyError, match="pas encore tenue"):
        run_meeting_survey(session=session, settings=settings, templates=MailTemplates(),
                           meeting_id=territory.meeting_id, now=HELD_AT)  # fmt: skip


def test_the_link_is_bound_to_contact_survey_and_meeting(held: Held) -> None:
    held.run(HELD_AT + timedelta(hours=1))
    contact = held.contacts(held.came[0])[0]
    with held.session() as session:
        survey = session.exec(select(Survey)).one()
    token = survey_url(held.settings, contact.public_id, survey).rsplit("/", 1)[1]
    link = read_survey_token(token, settings=held.settings, now=HELD_AT)
    assert (link.contact_public_id, link.survey_id, link.meeting_id) == (
        contact.public_id, survey.id, held.meeting_id,
    )  # fmt: skip
    with pytest.raises(InvalidToken):
        read_survey_token(token[:-2] + "AA", settings=held.settings, now=HELD_AT)


def test_results_count_average_distribute_and_export_a_csv_excel_opens(
    held: Held, tmp_path: Path
) -> None:
    held.run(HELD_AT + timedelta(hours=1))
    with held.session() as session:
        definition = SurveyDefinition.from_stored(session.exec(select(Survey)).one().definition)
    first, second = held.contacts(held.came[0])
    third = held.contacts(held.came[1])[0]
    for contact, form in (
        (first, {"q-satisfaction": ["5"], "q-club": ["Oui, comme membre"], "q-accueil": ["oui"],
                 "q-utile": ["Les témoignages d'autres entreprises", "Le moment convivial, pour faire connaissance"],
                 "q-synergies": ["=HYPERLINK(\"http://x\")  nos chutes de carton"]}),
        (second, {"q-satisfaction": ["4"], "q-club": ["Non"], "q-accueil": ["non"]}),
        (third, {"q-satisfaction": ["3"], "q-club": ["Oui, comme membre"],
                 "q-utile": ["Les témoignages d'autres entreprises"]}),
    ):  # fmt: skip
        checked = check_form(definition, lambda name, f=form: f.get(name, []))  # type: ignore[misc]
        assert checked.valid, checked.errors
        _answer(held, contact, checked.answers)
    with held.session() as session:
        results = survey_results(session=session, meeting_id=held.meeting_id, now=HELD_AT + DAY)
        rows = write_results_csv(session=session, meeting_id=held.meeting_id,
                                 path=tmp_path / "r.csv", tz=held.settings.tz)  # fmt: skip
    assert (results.attending_companies, results.responding_companies) == (3, 2)
    assert (results.invited_contacts, results.responses) == (4, 3)
    by_id = {q.id: q for q in results.questions}
    assert by_id["satisfaction"].count == 3 and by_id["satisfaction"].mean == 4
    assert dict(by_id["satisfaction"].distribution) == {"1": 0, "2": 0, "3": 1, "4": 1, "5": 1}
    assert dict(by_id["club"].distribution)["Oui, comme membre"] == 2
    assert dict(by_id["utile"].distribution)["Les témoignages d'autres entreprises"] == 2
    assert dict(by_id["accueil"].distribution) == {"oui": 1, "non": 1}
    assert [text for _, text in by_id["synergies"].texts] == [
        '=HYPERLINK("http://x")  nos chutes de carton'
    ]
    raw = (tmp_path / "r.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = raw.decode("utf-8-sig").splitlines()
    assert lines[0].startswith(
        "rencontre;questionnaire;entreprise;siret;contact;e-mail;question_id"
    )
    assert rows == len(lines) - 1 == 3 + 1 + 1 + 1 + 3 + 2  # one row per answer given
    cells = [row[8] for row in csv.reader(lines[1:], delimiter=";")]
    assert '\'=HYPERLINK("http://x")  nos chutes de carton' in cells  # a formula is shown as text


def test_results_of_a_meeting_without_survey_say_how_to_open_it(held: Held) -> None:
    with held.session() as session, pytest.raises(SurveyError, match="synergie surveys send"):
        survey_results(session=session, meeting_id=held.meeting_id, now=HELD_AT)
    with held.session() as session:
        assert session.get(Meeting, held.meeting_id).status == MeetingStatus.HELD  # type: ignore[union-attr]
        assert session.exec(select(SurveyRecipient)).all() == []
