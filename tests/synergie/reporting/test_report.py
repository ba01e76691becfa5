"""The programme's report on the reference case: 60 → 30 → 15, 12,960 km and 15.4 tCO2e a year."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from models import (
    Answer,
    Company,
    Meeting,
    MeetingStatus,
    Referral,
    Registration,
    Stage,
    SynergyStatus,
)
from synergie.reporting.programme import write_programme_report
from synergie.reporting.report import NO_DATA, build_report, to_markdown
from synergie.settings import Settings
from synergie.synergies.lifecycle import move_synergy
from tests.factories import NOW, make_company, make_contact
from tests.synergie.reporting.seed_case import build_seed_territory

NBSP = "\u00a0"


def test_the_reference_case_shows_60_30_15_and_the_km_and_co2_avoided(engine: sa.Engine) -> None:
    with Session(engine) as session:
        build_seed_territory(session)
        session.commit()
        report = build_report(session=session, now=NOW, title="Bilan")
    funnel = report.section("funnel").figures
    assert (
        funnel["reached.contacted"],
        funnel["reached.visited"],
        funnel["reached.participant"],
    ) == (60, 30, 15)
    notes = report.section("funnel").notes
    assert (
        "contactée 60 (référence 60) → visitée 30 (référence 30) → participante 15 (référence 15)"
        in notes[0]
    )
    assert notes[1].startswith("De « contactée » à « visitée » : 50 %")
    impact = report.section("impact")
    assert impact.figures["km_per_year"] == 12_960
    assert round(impact.figures["t_co2e_per_year"], 1) == 15.4
    assert f"12{NBSP}960 km de poids lourds évités par an, 15,4 tCO2e" in impact.notes[0]
    assert any("21055" in n and "Base Carbone" in n for n in impact.notes)
    assert any("conclues (agreed) ou en service (running)" in n for n in impact.notes)
    # Only the agreed cardboard synergy counts; the shredded paper one is under study.
    assert [row[0] for row in impact.rows] == [
        "Chutes de carton réutilisées pour l'emballage",
        "Total",
    ]
    synergies = report.section("synergies").figures
    assert (synergies["synergies.agreed"], synergies["synergies.study"]) == (1, 1)
    hours = report.section("hours").figures
    assert (hours["hours.listing"], hours["hours.visit"], hours["hours.flows-collection"]) == (
        5,
        60,
        15,
    )
    assert report.section("hours").rows[2][1:] == ("60 h", "60 h", "100 %")


def test_figures_come_from_the_database(engine: sa.Engine) -> None:
    with Session(engine) as session:
        ids = build_seed_territory(session)
        move_synergy(session=session, synergy_id=ids["cardboard"], target=SynergyStatus.STOPPED,
                     why="fin du contrat", actor="staff", now=NOW)  # fmt: skip
        session.commit()
        report = build_report(session=session, now=NOW, title="Bilan")
    assert report.section("impact").figures["km_per_year"] == 0
    assert report.section("synergies").figures["synergies.stopped"] == 1


def test_sections_without_data_say_so(engine: sa.Engine) -> None:
    with Session(engine) as session:
        report = build_report(session=session, now=NOW, title="Bilan")
    for key in ("surveys", "referrals", "meetings"):
        assert report.section(key).notes == (NO_DATA,)
        assert report.section(key).rows == ()
    markdown = to_markdown(report, when="1er décembre 2026")
    assert "## Questionnaires de suivi" in markdown and NO_DATA in markdown


def test_the_html_file_is_self_contained_french_with_inline_svg(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    from models.db import make_engine

    engine = make_engine(sqlite_settings.db_url)
    with Session(engine) as session:
        build_seed_territory(session)
        session.commit()
    written = write_programme_report(engine=engine, settings=sqlite_settings, now=NOW)
    engine.dispose()
    assert written.path.parent == sqlite_settings.reports_dir
    page = written.path.read_text(encoding="utf-8")
    assert '<html lang="fr">' in page and page.count("<svg") >= 3
    # Nothing fetched from elsewhere: no link, no image or script source, no CSS import.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", page)
    assert "<link" not in page and "@import" not in page
    assert not re.search(r"url\((?!#)", page)  # only the charts' own clip paths
    assert "<script" not in page and "@media print" in page
    assert f"12{NBSP}960" in page and "15,4" in page
    assert "| Étape |" in written.markdown


def test_the_surveys_section_gives_each_meetings_response_rate(
    engine: sa.Engine, settings: Settings
) -> None:
    from datetime import timedelta

    from models import Survey
    from models.db import write_transaction
    from synergie.surveys.responses import save_response
    from tests.synergie.surveys.conftest import HELD_AT, build_held

    held = build_held(engine, settings)
    held.run(HELD_AT + timedelta(hours=1))
    with write_transaction(engine) as connection:
        session = Session(bind=connection, expire_on_commit=False)
        survey = session.exec(sa.select(Survey)).scalar_one()  # type: ignore[call-overload]
        for contact in (held.contacts(held.came[0])[0], held.contacts(held.came[1])[0]):
            save_response(session=session, survey=survey, contact=contact, answers={"satisfaction": 4},
                          expected_version=0, now=HELD_AT + timedelta(days=1))  # fmt: skip
        session.close()
    with Session(engine) as session:
        section = build_report(session=session, now=NOW, title="Bilan").section("surveys")
    assert section.columns[:5] == (
        "Rencontre",
        "Questionnaire",
        "Entreprises présentes",
        "Ont répondu",
        "Taux de réponse",
    )
    [row] = section.rows
    assert row[0] == "Rencontre d'avril" and row[2:] == ("3", "2", "67 %", "2")
    assert section.figures[f"surveys.rate.{held.meeting_id}"] == pytest.approx(2 / 3)
    assert "2 réponse(s) d'entreprise pour 3 présence(s)" in section.notes[0]


def _meeting(session: Session, title: str, starts: datetime, status: MeetingStatus) -> Meeting:
    meeting = Meeting(uid=f"{title}@test", title=title, starts_at=starts, status=status,
                      ends_at=starts.replace(hour=starts.hour + 2), place="Nuits")  # fmt: skip
    session.add(meeting)
    session.flush()
    return meeting


def _register(
    session: Session, meeting: Meeting, company: Company, status: Answer, **more: object
) -> None:
    session.add(Registration(meeting_id=meeting.id, company_id=company.id, status=status, **more))  # type: ignore[arg-type]


def test_meetings_show_their_date_registered_present_waiting_and_referrals_how_far(
    engine: sa.Engine,
) -> None:
    with Session(engine) as session:
        # 16:00 UTC in April is 18 h in Paris (summer time); 17:30 UTC in January is 18 h 30.
        april = _meeting(session, "Rencontre d'avril", datetime(2027, 4, 13, 16, tzinfo=UTC),
                         MeetingStatus.HELD)  # fmt: skip
        january = _meeting(session, "Rencontre de janvier", datetime(2027, 1, 14, 17, 30, tzinfo=UTC),
                           MeetingStatus.INVITED)  # fmt: skip
        people = [make_company(session, stage=Stage.PARTICIPANT) for _ in range(6)]
        for company, attended in zip(people[:3], (True, True, False), strict=True):
            _register(session, april, company, Answer.REGISTERED, attended=attended)
        _register(session, april, people[3], Answer.WAITING)
        _register(session, april, people[4], Answer.DECLINED)
        _register(session, april, people[5], Answer.REGISTERED, removed=True)  # staff took it off
        _register(session, january, people[0], Answer.REGISTERED)
        visited = make_company(session, name="Voisine visitée", stage=Stage.VISITED)
        listed = make_company(session, name="Voisine listée", stage=Stage.LISTED)
        for by, whom, meeting in ((people[0], visited, april), (people[1], listed, january)):
            session.add(Referral(meeting_id=meeting.id, referrer_company_id=by.id,  # type: ignore[arg-type]
                                 referrer_contact_id=make_contact(session, by).id,
                                 company_id=whom.id, contact_id=make_contact(session, whom).id,
                                 consent=True))  # fmt: skip
        _register(session, april, visited, Answer.REGISTERED, attended=True)
        _register(session, january, listed, Answer.WAITING)
        session.commit()
        report = build_report(session=session, now=NOW, title="Bilan", tz=ZoneInfo("Europe/Paris"))
        names = {c.id: c.name for c in people}
    meetings = report.section("meetings")
    assert meetings.columns == ("Date", "Rencontre", "Inscrites", "Présentes", "En attente")
    assert meetings.rows == (
        ("14 janvier 2027 à 18 h 30", "Rencontre de janvier", "1", "—", "1"),
        ("13 avril 2027 à 18 h 00", "Rencontre d'avril", "4", "3", "1"),
    )
    assert meetings.figures["meetings"] == 2 and "dont 1 tenue(s)" in meetings.notes[0]
    referrals = report.section("referrals")
    assert referrals.rows == (
        ("Rencontre de janvier", names[people[1].id], "Voisine listée", "listée",
         "en liste d'attente"),
        ("Rencontre d'avril", names[people[0].id], "Voisine visitée", "visitée", "présente"),
    )  # fmt: skip
    assert (referrals.figures["referrals"], referrals.figures["referrals.visited"]) == (2, 1)
    assert "2 entreprise(s) invitée(s) par un participant, dont 1 visitée(s)" in referrals.notes[0]
    # The meetings' hours budget counts the meetings held or not: 10 h each.
    assert report.section("hours").rows[4][2] == "10 h par rencontre × 2"
