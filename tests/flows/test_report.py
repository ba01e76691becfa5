"""The report flow under a real (temporary) Prefect API: the HTML file and the artifacts staff read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
)
from sqlmodel import Session

from flows.report import report
from models.db import make_engine
from synergie.settings import Settings
from tests.synergie.reporting.seed_case import build_seed_territory

pytestmark = pytest.mark.usefixtures("prefect_harness")
KEYS = ["programme-report", "report-funnel", "report-impact", "report-hours"]


def test_the_flow_writes_the_page_and_publishes_markdown_and_tables(
    sqlite_settings: Settings,
) -> None:
    engine = make_engine(sqlite_settings.db_url)
    with Session(engine) as session:
        build_seed_territory(session)
        session.commit()
    engine.dispose()
    state = report(return_state=True)
    path = Path(state.result())
    assert path.parent == sqlite_settings.reports_dir and path.exists()
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=KEYS)),
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
            ),  # type: ignore[list-item]
        )
    artifacts = {a.key: str(a.data) for a in found if a.key}
    assert set(artifacts) == set(KEYS)
    assert "## Entonnoir des entreprises" in artifacts["programme-report"]
    impact = json.loads(artifacts["report-impact"])
    assert impact[-1]["km évités/an"] == "12\u00a0960" and impact[-1]["tCO2e évitées/an"] == "15,4"
    assert "participante" in {row["Étape"] for row in json.loads(artifacts["report-funnel"])}
