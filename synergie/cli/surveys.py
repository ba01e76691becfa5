"""The ``synergie surveys`` commands: send the follow-up surveys due, read a meeting's results, check a survey file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from synergie.cli.common import cli_settings, console, db_session, prefect_notice

surveys_app = typer.Typer(
    help="Questionnaires de suivi après les rencontres : invitations, un rappel, clôture, résultats.",
    no_args_is_help=True,
)


@surveys_app.command("send")
def surveys_send(
    meeting_id: Annotated[
        int | None,
        typer.Argument(help="Numéro de la rencontre (toutes celles qui sont dues par défaut)"),
    ] = None,
) -> None:
    """Ouvre le questionnaire des rencontres tenues, invite chaque contact des entreprises présentes, relance une fois, clôt."""
    from flows.surveys import surveys

    settings = cli_settings()
    with prefect_notice():
        result = surveys(meeting_id)
    console.print(
        f"{result['meetings']} rencontre(s) vue(s), {result['opened']} questionnaire(s) ouvert(s), "
        f"{result['invitations']} invitation(s) et {result['reminders']} rappel(s) mis en file, "
        f"{result['closed']} questionnaire(s) clos ; {result['email_sent']} e-mail(s) envoyé(s)."
    )
    if settings.email_backend == "file":
        console.print(f"Messages écrits dans {settings.outbox_dir / 'email'} (aucun envoi réel).")


@surveys_app.command("results")
def surveys_results(
    meeting_id: Annotated[int, typer.Argument(help="Numéro de la rencontre")],
    csv_file: Annotated[
        Path | None,
        typer.Option(
            "--csv", help="Exporter les réponses (une ligne par réponse, s'ouvre dans Excel)"
        ),
    ] = None,
) -> None:
    """Résultats du questionnaire : par question le nombre, la moyenne et la répartition (ou les textes), le taux de réponse."""
    from synergie.french import number
    from synergie.surveys.definition import KIND_LABELS_FR
    from synergie.surveys.results import rate_text, survey_results, write_results_csv

    settings = cli_settings()
    with db_session() as session:
        results = survey_results(session=session, meeting_id=meeting_id, now=datetime.now(UTC))
        written = (
            write_results_csv(session=session, meeting_id=meeting_id, path=csv_file, tz=settings.tz)
            if csv_file is not None else None
        )  # fmt: skip
    state = "ouvert" if results.open else "clos"
    console.rule(f"[bold]{results.title} — rencontre n° {meeting_id} ({state})")
    console.print(f"{results.meeting_title}")
    console.print(f"Taux de réponse : {rate_text(results)}")
    for index, q in enumerate(results.questions, start=1):
        mean = f", moyenne {number(q.mean)}" if q.mean is not None else ""
        console.print(
            f"\n[bold]{index}. {q.label}[/] ({KIND_LABELS_FR[q.kind]}) — {q.count} réponse(s){mean}"
        )
        if q.distribution:
            table = Table(show_header=True)
            table.add_column("Réponse")
            table.add_column("Nombre", justify="right")
            for label, count in q.distribution:
                table.add_row(label, str(count))
            console.print(table)
        for company, text in q.texts:
            console.print(f"  « {text} » — {company}", markup=False)
    if csv_file is not None:
        console.print(f"\n{written} réponse(s) exportée(s) dans {csv_file}.")


@surveys_app.command("check")
def surveys_check(
    name: Annotated[
        str, typer.Argument(help="Nom du questionnaire (ex. suivi-rencontre) ou fichier .yaml")
    ],
) -> None:
    """Vérifie un fichier de questionnaire (dossier de modèles personnalisés d'abord) et liste ses questions."""
    from synergie.surveys.definition import KIND_LABELS_FR, load_survey, survey_path

    settings = cli_settings()
    path = survey_path(name, settings.templates_dir)
    survey = load_survey(name, settings.templates_dir)
    console.print(
        f"{path} : questionnaire valide, « {survey.title} », {len(survey.questions)} question(s)."
    )
    for index, q in enumerate(survey.questions, start=1):
        required = " (obligatoire)" if q.required else ""
        console.print(
            f"  {index}. [{q.id}] {q.label} — {KIND_LABELS_FR[q.kind]}{required}", markup=False
        )
