"""The import_listing flow under a real (temporary) Prefect API: counts, artifacts, form defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
)
from pydantic import ValidationError
from sqlmodel import Session, func, select

from flows.import_listing import ImportListingParams, import_listing
from models import Company
from models.db import make_engine
from synergie import SAMPLE_LISTING
from synergie.settings import Settings
from tests.factories import luhn_siret, write_csv

pytestmark = pytest.mark.usefixtures("prefect_harness")


def artifacts_of(flow_run_id: object) -> dict[str, object]:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["import-listing", "import-listing-rejects"])
            ),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),  # type: ignore[list-item]
        )
    return {artifact.key: artifact.data for artifact in found if artifact.key}


def test_the_flow_imports_and_publishes_its_report(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "liste.csv",
        f"siret;raison_sociale;code_postal\n{luhn_siret(1)};Une Entreprise;21700\n123;Mauvaise;21700\n",
    )
    state = import_listing(ImportListingParams(path=str(path), dry_run=False), return_state=True)
    counts = state.result()
    assert (counts["created"], counts["rejected"]) == (1, 1)
    engine = make_engine(sqlite_settings.db_url)
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Company)).one() == 1
    artifacts = artifacts_of(state.state_details.flow_run_id)
    assert "| Entreprises créées | 1 |" in str(artifacts["import-listing"])
    assert "SIRET invalide" in str(artifacts["import-listing-rejects"])


def test_by_default_the_form_is_a_dry_run_of_the_sample(sqlite_settings: Settings) -> None:
    params = ImportListingParams()
    assert params.dry_run is True and params.path == str(SAMPLE_LISTING)
    counts = import_listing(params)
    assert counts["created"] >= 50 and counts["rejected"] == 0
    engine = make_engine(sqlite_settings.db_url)
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Company)).one() == 0


def test_a_missing_file_fails_the_run_with_the_reason(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    state = import_listing(
        ImportListingParams(path=str(tmp_path / "absent.csv"), dry_run=False), return_state=True
    )
    assert state.is_failed()
    with pytest.raises(Exception, match="fichier introuvable"):
        state.result()


def test_parameters_are_checked_before_the_run() -> None:
    with pytest.raises(ValidationError, match="tranche inconnue"):
        ImportListingParams(path="x.csv", min_staff_band="99")
    with pytest.raises(ValidationError, match="code commune INSEE invalide"):
        ImportListingParams(path="x.csv", communes=["Nuits"])
