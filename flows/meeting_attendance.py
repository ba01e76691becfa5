"""The ``meeting-attendance`` flow: staff tick who came, in a form listing the registered companies."""

from __future__ import annotations

from typing import Any

from prefect import flow, pause_flow_run
from prefect.input import RunInput
from pydantic import Field, create_model

from synergie.settings import load_settings
from tasks.meetings import record_meeting_attendance, registered_companies

DEFAULT_TIMEOUT_SECONDS = 3600


class AttendanceInput(RunInput):
    """Cochez les entreprises présentes à la rencontre."""

    by: str = Field(
        title="Votre nom",
        min_length=1,
        max_length=100,
        description="Votre nom, gardé dans l'historique",
    )


def attendance_form(companies: list[dict[str, Any]]) -> type[AttendanceInput]:
    """Return the form: one box per registered company (titled with its name), and who fills it."""
    boxes: dict[str, Any] = {
        f"entreprise_{company['id']}": (
            bool,
            Field(
                default=False,
                title=str(company["name"]),
                description=f"SIRET {company['siret'] or '—'}",
            ),
        )
        for company in companies
    }
    return create_model("AttendanceInput", __base__=AttendanceInput, **boxes)


@flow(name="meeting_attendance")
def meeting_attendance(
    meeting_id: int,
    present_sirets: list[str] | None = None,
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
) -> dict[str, object]:
    """Record who came: from ``present_sirets`` (CLI), else from the form this run pauses for."""
    settings = load_settings()
    if present_sirets is not None:
        return record_meeting_attendance(
            settings=settings, meeting_id=meeting_id, sirets=present_sirets, company_ids=[]
        )
    companies = registered_companies(settings=settings, meeting_id=meeting_id)
    answer = pause_flow_run(
        wait_for_input=attendance_form(companies), timeout=timeout_seconds, poll_interval=1
    )
    present = [int(c["id"]) for c in companies if getattr(answer, f"entreprise_{c['id']}", False)]
    return record_meeting_attendance(
        settings=settings,
        meeting_id=meeting_id,
        sirets=[],
        company_ids=present,
        actor=f"staff:{answer.by.strip()}",
    )


if __name__ == "__main__":
    import sys

    meeting_attendance(int(sys.argv[1]))
