"""The demo command: a fictional territory taken through the pipeline in a fresh database."""

from __future__ import annotations

import asyncio
import os
import shutil
from datetime import UTC, datetime

import typer

from models.enums import Channel
from synergie.cli.common import (
    cli_settings,
    console,
    db_session,
    prefect_notice,
    progress_bar,
    send_now,
)
from synergie.cli.listing import print_import
from synergie.cli.mailing import print_mailing
from synergie.cli.reporting import print_funnel
from synergie.settings import Settings

app = typer.Typer()

DEMO_CAMPAIGN = "Pays de Nuits-Saint-Georges (démonstration)"


@app.command()
def demo() -> None:
    """Démonstration sur le territoire fictif de Nuits-Saint-Georges, dans une base neuve."""
    from flows.import_listing import ImportListingParams
    from flows.import_listing import import_listing as import_flow
    from flows.mailing import MailingParams, mailing
    from models import Campaign
    from models.companies import list_companies
    from models.db import upgrade_database
    from synergie import SAMPLE_LISTING

    base = cli_settings()
    demo_dir = (base.data_dir / "demo").resolve()
    if demo_dir.exists():
        shutil.rmtree(demo_dir)
    # Flows read their settings from the environment, as a worker would.
    os.environ["SYNERGIE_DATA_DIR"] = str(demo_dir)
    os.environ.pop("SYNERGIE_DATABASE_URL", None)
    # The demo never reaches a real person: its e-mails and its SMS (to fictional callers and
    # companies) are written to files, even where SMTP or Twilio is configured.
    os.environ["SYNERGIE_EMAIL_BACKEND"] = "file"
    os.environ["SYNERGIE_SMS_BACKEND"] = "file"
    settings = cli_settings()
    console.rule("[bold]Synergie — démonstration")
    console.print(f"Données de la démonstration : {demo_dir}")
    upgrade_database(settings.db_url)
    console.print("1. Base SQLite neuve créée.")
    console.print(
        f"2. Importation de la liste fictive ({SAMPLE_LISTING.name}) par le flow import_listing."
    )
    with prefect_notice(), progress_bar():
        counts = import_flow(ImportListingParams(path=str(SAMPLE_LISTING), dry_run=False))
    print_import(counts, dry_run=False)
    with db_session() as session:
        communes = sorted(
            {
                c.commune_code
                for c in list_companies(session=session, limit=10_000)
                if c.commune_code
            }
        )
        session.add(Campaign(name=DEMO_CAMPAIGN, year=datetime.now(UTC).year, communes=communes))
    console.print(f"3. Campagne « {DEMO_CAMPAIGN} » créée ({len(communes)} communes).")
    console.print("4. Premier courrier envoyé par le flow mailing, dans la boîte d'envoi fichier.")
    with progress_bar():
        result = asyncio.run(
            mailing(
                MailingParams(
                    campaign=DEMO_CAMPAIGN, dry_run=False, rate_per_minute=None, max_per_run=10_000
                )
            )
        )
    print_mailing(result, False, settings)
    _demo_calls_and_visits(settings)
    _demo_inventory(settings)
    _demo_meetings(settings)
    _demo_surveys(settings)
    console.print("14. Entonnoir des entreprises, comparé au cas de référence (synergie funnel).")
    with db_session() as session:
        print_funnel(session)
    _demo_synergies(settings)


# What the demo's callers hear, in turn: about half the companies want a visit, as in the seed.
DEMO_OUTCOMES = ("interested", "no-answer", "interested", "refused", "interested", "callback")


def _demo_calls_and_visits(settings: Settings) -> None:
    """Demo steps 5–7: a day of calls, visits booked for the interested, one moved, one cancelled."""
    from datetime import timedelta

    from sqlmodel import col, select

    from flows.call_reminders import CallRemindersParams, call_reminders
    from flows.visits import VisitsParams, visits
    from models import CallOutcome, CallTask, Company, Visit, VisitStatus
    from synergie.calls.callers import add_caller
    from synergie.calls.outcomes import log_call
    from synergie.messaging.rendering import MailTemplates
    from synergie.visits.lifecycle import add_staff, cancel_visit, reschedule_visit

    with db_session() as session:
        for number, name in enumerate(
            ("Bénévole A (fictif)", "Bénévole B (fictif)", "Bénévole C (fictif)")
        ):
            add_caller(session=session, name=name, phone=f"+3363998990{number}",
                       email=f"benevole{number + 1}@example.org", per_day=20, days=range(1, 8))  # fmt: skip
        add_staff(session=session, name="Chargée de mission (fictive)", email="eit@example.org")
    console.print(
        "5. Trois bénévoles fictifs reçoivent la liste d'appels du jour (flow call_reminders)."
    )
    with progress_bar():
        call_reminders(CallRemindersParams(after_days=0, dry_run=False))
    now = datetime.now(UTC)
    with db_session() as session:
        called = session.exec(
            select(Company).join(CallTask, col(CallTask.company_id) == Company.id)
            .where(col(CallTask.outcome).is_(None)).order_by(Company.name)
        ).all()  # fmt: skip
        for index, company in enumerate(called):
            outcome = CallOutcome(DEMO_OUTCOMES[index % len(DEMO_OUTCOMES)])
            log_call(
                session=session, company=company, outcome=outcome, notes="appel de démonstration",
                on=(now + timedelta(days=7)).date() if outcome == CallOutcome.CALLBACK else None,
                actor="staff:démo", now=now, call_minutes=settings.call_minutes,
            )  # fmt: skip
    console.print(f"   {len(called)} appels notés (intéressée, refus, pas de réponse, rappel…).")
    console.print(
        "6. Visites réservées pour les entreprises intéressées, invitations iCal (flow visits)."
    )
    with progress_bar():
        visits(VisitsParams(dry_run=False))
    with db_session() as session:
        booked = session.exec(
            select(Visit).where(Visit.status == VisitStatus.BOOKED).order_by(col(Visit.id))
        ).all()
        templates = MailTemplates(settings.templates_dir)
        if len(booked) >= 2:
            reschedule_visit(session=session, settings=settings, templates=templates, visit=booked[0],
                             now=now, actor="staff:démo")  # fmt: skip
            cancel_visit(session=session, settings=settings, templates=templates, visit=booked[1],
                         now=now, actor="staff:démo", why="l'entreprise a demandé à annuler")  # fmt: skip

    send_now(settings, Channel.EMAIL)
    console.print(
        "7. Une visite déplacée (même UID, SEQUENCE + 1) et une annulée (METHOD:CANCEL) : "
        f"voir {settings.outbox_dir / 'email'}"
    )


# The reference year's three meetings (seed: April, June, October), in the year to come.
DEMO_MEETINGS = (
    (4, 13, "1re rencontre : World Café « économie positive »"),
    (6, 15, "2e rencontre des entreprises"),
    (10, 12, "3e rencontre : chacun invite une entreprise de son réseau"),
)


def _demo_meetings(settings: Settings) -> None:
    """Demo steps 9–12: visits closed, three meetings invited and answered, a waiting list, attendance, referrals."""
    from datetime import timedelta

    from sqlmodel import col, select

    from flows.meeting_invitations import MeetingInvitationsParams, meeting_invitations
    from flows.meeting_sync import meeting_sync
    from models import Answer, Company, Contact, Meeting, Registration, Stage, Visit, VisitStatus
    from synergie.mailing.campaigns import sender_domain
    from synergie.meetings.attendance import record_attendance
    from synergie.meetings.planning import add_meeting, summarise
    from synergie.meetings.referrals import create_referral, validate_referral
    from synergie.meetings.registrations import lock_meeting, record_answer
    from synergie.visits.lifecycle import close_visit

    now = datetime.now(UTC)
    with db_session() as session:
        booked = session.exec(select(Visit).where(Visit.status == VisitStatus.BOOKED)).all()
        for visit in booked:
            close_visit(session=session, visit=visit, notes="visite de démonstration", now=now,
                        actor="staff:démo", timezone=settings.timezone)  # fmt: skip
        hosts = session.exec(
            select(Company).where(Company.stage == Stage.VISITED).order_by(col(Company.name))
        ).all()
        host_ids = [c.id for c in hosts[:3]]
    console.print(
        f"9. {len(booked)} visites faites : ces entreprises sont invitées aux rencontres."
    )
    year = now.astimezone(settings.tz).year + 1
    meeting_ids: list[int] = []
    with db_session() as session:
        for (month, day, title), host_id in zip(DEMO_MEETINGS, host_ids, strict=False):
            starts = datetime(year, month, day, 18, 0, tzinfo=settings.tz)
            meeting = add_meeting(session=session, title=title, starts_at=starts, now=now,
                                  domain=sender_domain(settings), host=session.get(Company, host_id),
                                  capacity=15, per_company=1)  # fmt: skip
            meeting_ids.append(int(meeting.id or 0))

    def answer_all(meeting_id: int, answers: list[tuple[int, Answer]], moment: datetime) -> None:
        with db_session() as session:
            lock_meeting(session, meeting_id)
            meeting = session.get(Meeting, meeting_id)
            for company_id, answer in answers:
                registration = session.exec(
                    select(Registration).where(Registration.meeting_id == meeting_id,
                                               Registration.company_id == company_id)
                ).one()  # fmt: skip
                record_answer(session=session, meeting=meeting, registration=registration, answer=answer,  # type: ignore[arg-type]
                              people=1, note=None, contact_id=None, now=moment)  # fmt: skip

    def invite(meeting_id: int) -> list[int]:
        with progress_bar():
            meeting_invitations(MeetingInvitationsParams(meeting_id=meeting_id, dry_run=False))
        with db_session() as session:
            rows = session.exec(
                select(Registration.company_id).where(Registration.meeting_id == meeting_id)
                .order_by(col(Registration.id))
            ).all()  # fmt: skip
            return list(rows)

    def attend(meeting_id: int) -> int:
        with db_session() as session:
            meeting = session.get(Meeting, meeting_id)
            came = [r.company_id for r in session.exec(select(Registration).where(
                Registration.meeting_id == meeting_id, Registration.status == Answer.REGISTERED))]  # fmt: skip
            record_attendance(session=session, meeting=meeting, present_company_ids=came,  # type: ignore[arg-type]
                              now=meeting.ends_at, actor="staff:démo", hours=settings.meeting_hours,  # type: ignore[union-attr]
                              timezone=settings.timezone)  # fmt: skip
            return len(came)

    april, june, october = meeting_ids
    invited = invite(april)
    # 17 yes for 15 seats: 15 registered, 2 on the waiting list; then one withdraws.
    yes = invited[:17]
    answer_all(april, [(c, Answer.REGISTERED) for c in yes], now)
    answer_all(
        april,
        [(c, Answer.DECLINED) for c in invited[17:19]]
        + [(c, Answer.MAYBE) for c in invited[19:20]],
        now,
    )
    answer_all(april, [(yes[3], Answer.DECLINED)], now + timedelta(minutes=5))
    meeting_sync(meeting_id=april)
    with db_session() as session:
        summary = summarise(session=session, meeting=session.get(Meeting, april))  # type: ignore[arg-type]
        registered, waiting = summary.of(Answer.REGISTERED), summary.of(Answer.WAITING)
        promoted = [c.name for r, c in registered if r.promoted_at is not None]
    console.print(
        f"10. Rencontre d'avril : {len(invited)} entreprises invitées (e-mail + invitation d'agenda), "
        f"{len(registered)} inscrites (complet), {len(waiting)} en liste d'attente ; un désistement a "
        f"libéré une place, donnée à {', '.join(promoted)} (première de la liste)."
    )
    console.print(f"   Présence notée : {attend(april)} entreprises participantes, "
                  f"{settings.meeting_hours:g} h d'équipe au registre.")  # fmt: skip
    invited = invite(june)
    answer_all(june, [(c, Answer.REGISTERED) for c in invited[:15]], now)
    meeting_sync(meeting_id=june)
    console.print(
        f"11. Rencontre de juin : {len(invited)} invitées, 15 inscrites ; présence : {attend(june)}."
    )
    invited = invite(october)
    answer_all(october, [(c, Answer.REGISTERED) for c in invited[:12]], now)
    with db_session() as session:
        lock_meeting(session, october)
        meeting = session.get(Meeting, october)
        known = session.exec(select(Company).where(Company.stage == Stage.DECLINED)).first()
        brought = []
        for number, company_id in enumerate(invited[:3]):
            referrer = session.exec(select(Contact).where(Contact.company_id == company_id)).first()
            fields = {"company_name": f"Entreprise voisine {number + 1} (fictive)", "postcode": "21700",
                      "commune": "Nuits-Saint-Georges", "contact_name": f"Invité {number + 1}",
                      "email": f"voisine{number + 1}@example.org", "consent": "oui"}  # fmt: skip
            if number == 2 and known is not None:
                # Already in the listing: linked, not duplicated (it declined, so it is not written to).
                fields.update(
                    company_name=known.name,
                    siret=known.siret or "",
                    postcode=known.postcode or "21700",
                )
            outcome = create_referral(session=session, meeting=meeting, referrer=referrer,  # type: ignore[arg-type]
                                      form=validate_referral(fields), now=now)  # fmt: skip
            brought.append(outcome.company.id)
    meeting_sync(meeting_id=october)
    with db_session() as session:
        summary = summarise(session=session, meeting=session.get(Meeting, october))  # type: ignore[arg-type]
        console.print(
            "12. Rencontre d'octobre : chaque participant invite une entreprise de son réseau."
        )
        for referral, company, by in summary.referrals:
            console.print(
                f"   {by.name} invite {company.name} ({summary.referral_state(referral)})."
            )
    console.print(
        "   « synergie meetings show N » montre inscrits, attente, refus et recommandations."
    )


# What three fictional participants of the April meeting answer in its follow-up survey.
DEMO_ANSWERS: tuple[dict[str, object], ...] = (
    {"satisfaction": 5, "utile": ["La visite de l'entreprise qui nous accueillait",
                                  "Les échanges en petits groupes (World Café)"],
     "sujets": "La consigne des palettes entre voisins", "club": "Oui, et je suis prêt·e à m'y impliquer",
     "accueil": True, "synergies": "Nos chutes de carton pourraient caler les colis d'un voisin."},
    {"satisfaction": 4, "utile": ["Les témoignages d'autres entreprises"], "club": "Oui, comme membre",
     "accueil": False},
    {"satisfaction": 3, "utile": ["Le moment convivial, pour faire connaissance"],
     "club": "Peut-être, j'aimerais en savoir plus",
     "synergies": "Un ramassage commun des films plastiques de la zone d'activités."},
)  # fmt: skip


def _demo_surveys(settings: Settings) -> None:
    """Demo step 13: the held meetings' follow-up surveys sent, three answers, one reminder a week later, the results."""
    from datetime import timedelta

    from sqlmodel import col, select

    from flows.surveys import surveys
    from models import Contact, Meeting, MeetingStatus, Survey, SurveyRecipient
    from synergie.messaging.rendering import MailTemplates
    from synergie.surveys.outreach import run_meeting_survey
    from synergie.surveys.responses import save_response
    from synergie.surveys.results import rate_text, survey_results

    result = surveys()
    console.print(
        f"13. Questionnaires de suivi (flow surveys) : {result['opened']} ouvert(s) après les rencontres "
        f"tenues, {result['invitations']} invitation(s) envoyée(s), une par contact des entreprises présentes."
    )
    now = datetime.now(UTC)
    with db_session() as session:
        april = session.exec(
            select(Meeting)
            .where(Meeting.status == MeetingStatus.HELD)
            .order_by(col(Meeting.starts_at))
        ).first()
        survey = session.exec(select(Survey).where(Survey.meeting_id == april.id)).one()  # type: ignore[union-attr]
        invited = session.exec(
            select(Contact).join(SurveyRecipient, col(SurveyRecipient.contact_id) == col(Contact.id))
            .where(SurveyRecipient.survey_id == survey.id).order_by(col(SurveyRecipient.id))
        ).all()  # fmt: skip
        for contact, answers in zip(invited, DEMO_ANSWERS, strict=False):
            save_response(session=session, survey=survey, contact=contact, answers=dict(answers),
                          expected_version=0, now=now)  # fmt: skip
        meeting_id = int(april.id or 0)  # type: ignore[union-attr]
    with db_session() as session:
        # A week later, as the daily run would: one reminder, only to those who have not answered.
        later = run_meeting_survey(session=session, settings=settings, templates=MailTemplates(settings.templates_dir),
                                   meeting_id=meeting_id, now=now + timedelta(days=settings.survey_reminder_days))  # fmt: skip
    with db_session() as session:
        results = survey_results(session=session, meeting_id=meeting_id, now=now)
    console.print(
        f"   {len(DEMO_ANSWERS)} réponses sur le portail ; {settings.survey_reminder_days} jours plus tard "
        f"(simulés), {later.reminders} rappel(s) mis en file pour les autres contacts, partant à cette "
        "date : aucun à qui a répondu."
    )
    console.print(f"   Résultats de la rencontre d'avril : {rate_text(results)}")
    for question in results.questions[:4]:
        if question.mean is not None:
            console.print(
                f"   · {question.label} : moyenne {str(round(question.mean, 1)).replace('.', ',')} sur 5"
            )
        elif question.distribution:
            top = max(question.distribution, key=lambda item: item[1])
            console.print(f"   · {question.label} : « {top[0]} » ({top[1]})")
    console.print(
        f"   « synergie surveys results {meeting_id} [--csv FICHIER] » donne tout le détail."
    )


# What the demo's visited companies answer in their flow questionnaire: the reference case's
# cardboard scraps (3 lorry trips a month of 360 km) and shredded paper leave the first site;
# the second and third need cardboard and paper, so the synergies step has something to match.
DEMO_FLOWS: tuple[tuple[dict[str, str], ...], ...] = (
    (
        {"direction": "sortant", "description": "chutes de carton", "waste_code": "15 01 01",
         "quantity": "2", "unit": "t", "frequency": "mois", "outlet": "collecteur",
         "trips_per_month": "3", "km_per_trip": "360", "amount_eur": "180", "money_kind": "coût",
         "note": "repris par un collecteur hors du canton, avant recyclage"},
        {"direction": "sortant", "description": "papier broyé", "waste_code": "20 01 01",
         "quantity": "150", "unit": "kg", "frequency": "semaine", "outlet": "collecteur",
         "note": "archives broyées, sacs de 20 kg"},
        {"direction": "sortant", "description": "huiles de vidange des machines", "waste_code": "13 02 05",
         "quantity": "200", "unit": "L", "frequency": "an", "outlet": "collecteur"},
    ),
    (
        {"direction": "entrant", "description": "cartons d'emballage pour les expéditions",
         "category": "papier-carton", "quantity": "1,5", "unit": "t", "frequency": "mois",
         "outlet": "fournisseur", "trips_per_month": "2", "km_per_trip": "80",
         "amount_eur": "900", "money_kind": "coût"},
        {"direction": "sortant", "description": "palettes bois", "waste_code": "15 01 03",
         "quantity": "40", "unit": "palettes", "frequency": "mois", "outlet": "réemploi"},
    ),
    (
        {"direction": "entrant", "description": "papier de calage", "category": "papier-carton",
         "quantity": "100", "unit": "kg", "frequency": "semaine", "outlet": "fournisseur"},
        {"direction": "sortant", "description": "films plastiques d'emballage", "waste_code": "15 01 02",
         "quantity": "3", "unit": "m³", "frequency": "mois", "outlet": "incinération"},
    ),
)  # fmt: skip


def _demo_inventory(settings: Settings) -> None:
    """Close visits, and fill the visited companies' flows: one through the portal's path, the others by staff."""
    from sqlmodel import col, select

    from models import Company, FlowOrigin, Visit, VisitStatus
    from synergie.inventory.questionnaire import invite_to_inventory, review_submissions
    from synergie.inventory.rows import validate_flow
    from synergie.inventory.store import accept_inventory, add_flows, replace_portal_flows
    from synergie.messaging.rendering import MailTemplates
    from synergie.visits.lifecycle import close_visit

    now = datetime.now(UTC)
    templates = MailTemplates(settings.templates_dir)
    with db_session() as session:
        booked = session.exec(
            select(Visit).where(Visit.status == VisitStatus.BOOKED).order_by(col(Visit.id))
        ).all()
        visited: list[Company] = []
        for visit, answers in zip(booked, DEMO_FLOWS, strict=False):
            close_visit(session=session, visit=visit, notes="visite de démonstration", now=now,
                        actor="staff:démo", timezone=settings.timezone)  # fmt: skip
            company = session.get(Company, visit.company_id)
            assert company is not None
            invite_to_inventory(session=session, settings=settings, templates=templates,
                                company=company, contact_id=visit.contact_id, now=now)  # fmt: skip
            rows = [validate_flow(values) for values in answers]
            if not visited:  # the first company answers the questionnaire itself
                replace_portal_flows(session=session, company=company, contact_id=visit.contact_id,
                                     rows=rows, now=now)  # fmt: skip
            else:
                add_flows(session=session, company=company, rows=rows, origin=FlowOrigin.STAFF,
                          actor="staff:démo", now=now)  # fmt: skip
            visited.append(company)
        review_submissions(session=session, settings=settings, templates=templates, now=now,
                           actor="staff:démo")  # fmt: skip
        if visited:
            accept_inventory(session=session, company=visited[0], actor="staff:démo", now=now)
        names = ", ".join(company.name for company in visited)
    send_now(settings, Channel.EMAIL)
    console.print(
        f"8. {len(visited)} visite(s) close(s) ({names or 'aucune'}) : questionnaire des flux envoyé ; "
        "la première a répondu (chutes de carton 15 01 01, 3 trajets/mois de 360 km ; papier broyé "
        "20 01 01), la chargée de mission a reçu le résumé et validé l'inventaire "
        "(synergie inventory list)."
    )


def _demo_synergies(settings: Settings) -> None:
    """Demo steps 14–15: matching on the flows the inventory step stored, two synergies moved along, the report."""
    from models import SynergyStatus
    from models.db import make_engine
    from synergie.reporting.programme import write_programme_report
    from synergie.synergies.lifecycle import PartySpec, create_synergy, move_synergy
    from synergie.synergies.matching import Kind, MatchSettings, candidates
    from synergie.synergies.sources import inventory_territory

    now = datetime.now(UTC)
    with db_session() as session:
        table = inventory_territory(session=session)
        found = candidates(
            table.sites, table.flows, MatchSettings(road_factor=settings.road_factor)
        )
        console.print(
            f"15. Mise en relation sur les {len(table.flows)} flux de l'inventaire "
            f"({len(table.sites)} entreprises) : {len(found)} synergie(s) candidate(s) "
            "(synergie synergies match)."
        )
        for candidate in found[:4]:
            console.print(
                f"   {candidate.score:.0f} — {' / '.join(candidate.companies)} "
                f"(flux {', '.join(str(i) for i in candidate.flow_ids)})"
            )
            for reason in candidate.reasons:
                console.print(f"      · {reason}")
        flows = {f.id: f for f in table.flows}
        # The reference case's synergy: the first company's cardboard scraps, as packing material.
        cardboard_match = next(
            (c for c in found if c.kind == Kind.SUBSTITUTION
             and (code := flows[c.flow_ids[0]].code) is not None and code.code == "150101"),
            None,
        )  # fmt: skip
        paper_flow = next(
            (f for f in table.flows if f.code is not None and f.code.code == "200101"), None
        )
        if cardboard_match is None or paper_flow is None:
            console.print("   [yellow]Pas de synergie carton trouvée : la suite est sautée.[/]")
            return
        # Trips, km and tonnes come from the flows: the cardboard's 3 trips a month of 360 km.
        cardboard = create_synergy(
            session=session, title="Chutes de carton réutilisées pour l'emballage",
            parties=[PartySpec(int(cardboard_match.site_ids[0]), "giver"),  # type: ignore[call-overload]
                     PartySpec(int(cardboard_match.site_ids[1]), "taker")],  # type: ignore[call-overload]
            flow_ids=[int(i) for i in cardboard_match.flow_ids],  # type: ignore[call-overload]
            actor="staff:démo", now=now,
        )  # fmt: skip
        for status in (SynergyStatus.STUDY, SynergyStatus.AGREED):
            move_synergy(session=session, synergy_id=cardboard.id, target=status,  # type: ignore[arg-type]
                         why="démonstration", actor="staff:démo", now=now)  # fmt: skip
        paper = create_synergy(
            session=session, title="Papier broyé pour la collectivité", actor="staff:démo",
            parties=[PartySpec(int(paper_flow.site_id), "giver"), PartySpec(None, "taker")],  # type: ignore[call-overload]
            flow_ids=[int(paper_flow.id)], now=now,  # type: ignore[call-overload]
        )  # fmt: skip
        move_synergy(session=session, synergy_id=paper.id, target=SynergyStatus.STUDY,  # type: ignore[arg-type]
                     why="démonstration", actor="staff:démo", now=now)  # fmt: skip
        console.print(
            f"   Synergie « carton » entre {' et '.join(cardboard_match.companies)} conclue "
            f"({cardboard.trips_per_month:g} trajets/mois de {cardboard.km_per_trip:g} km évités, "
            "repris de l'exutoire actuel du flux), synergie « papier broyé » avec la collectivité "
            "à l'étude."
        )
    engine = make_engine(settings.db_url)
    try:
        written = write_programme_report(engine=engine, settings=settings, now=now)
    finally:
        engine.dispose()
    console.print(f"16. Bilan de la démarche : {written.path}")
