"""An upload whose import went quiet: the page says so instead of « en cours » for ever."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from models import ListingUpload, StaffMember, UploadStatus
from synergie.listing.reading import ListingFileError, ListingFilter
from synergie.listing.uploads import heartbeat_path, import_recorded, record_upload
from tests.portal import test_staff as staff
from tests.portal.test_staff import LISTING, Office

office = staff.office  # the signed-in staff portal of test_staff, as a fixture here too


def _upload(office: Office, *, status: UploadStatus, uploaded_at: datetime) -> tuple[int, Path]:
    """An upload row as the portal records it, then as an import (or nobody) left it."""
    kept = office.settings.data_dir / "uploads" / f"{status.value}.csv"
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_text(LISTING)
    with Session(office.engine) as session:
        staff_id = session.exec(select(StaffMember.id)).one()
    upload_id = record_upload(office.engine, staff_id=staff_id, file_name="liste.csv",  # type: ignore[arg-type]
                              stored_path=kept, dry_run=False, now=uploaded_at)  # fmt: skip
    with office.engine.begin() as connection:
        connection.execute(
            sa.update(ListingUpload)
            .where(col(ListingUpload.id) == upload_id)
            .values(
                status=status, started_at=uploaded_at if status == UploadStatus.RUNNING else None
            )
        )
    return upload_id, kept


def _beat(kept: Path, at: datetime) -> None:
    """What the running import's heartbeat leaves: the file beside the upload, touched at ``at``."""
    beat = heartbeat_path(kept)
    beat.touch()
    os.utime(beat, (at.timestamp(), at.timestamp()))


def test_a_running_import_that_went_quiet_is_reported_stopped(office: Office) -> None:
    office.sign_in()
    now = office.clock.now
    upload_id, kept = _upload(
        office, status=UploadStatus.RUNNING, uploaded_at=now - timedelta(minutes=10)
    )

    page = office.client.get(f"/equipe/imports/{upload_id}").text
    assert "Importation interrompue" in page and "depuis 10 minutes" in page
    assert "Rien n'a été écrit" in page and 'href="/equipe/import"' in page
    assert 'http-equiv="refresh"' not in page  # nothing more to wait for

    _beat(kept, now - timedelta(seconds=20))  # its worker is alive: it said so 20 s ago
    page = office.client.get(f"/equipe/imports/{upload_id}").text
    assert "Importation en cours" in page and 'http-equiv="refresh"' in page
    assert "interrompue" not in page

    _beat(kept, now - timedelta(minutes=3))  # and then went quiet
    page = office.client.get(f"/equipe/imports/{upload_id}").text
    assert "Importation interrompue" in page and "depuis 3 minutes" in page


def test_an_upload_no_worker_took_says_so_and_keeps_waiting(office: Office) -> None:
    office.sign_in()
    now = office.clock.now
    fresh, _ = _upload(office, status=UploadStatus.QUEUED, uploaded_at=now)
    page = office.client.get(f"/equipe/imports/{fresh}").text
    assert "Importation en cours" in page and "Aucun travailleur" not in page

    office.clock.now = now + timedelta(minutes=5)
    page = office.client.get(f"/equipe/imports/{fresh}").text
    assert "Aucun travailleur ne l'a encore prise" in page and "il y a 5 minutes" in page
    assert 'http-equiv="refresh"' in page  # it starts as soon as a worker is free


def test_the_import_beats_while_it_runs_and_removes_its_file_after(
    engine: sa.Engine, tmp_path: Path
) -> None:
    kept = tmp_path / "uploads" / "liste.csv"
    kept.parent.mkdir()
    kept.write_text(LISTING)
    with Session(engine) as session:
        session.add(StaffMember(name="Claire Martin", email="claire@example.org"))
        session.commit()
        staff_id = session.exec(select(StaffMember.id)).one()
    beat = heartbeat_path(kept)
    seen: list[bool] = []

    def progress(done: int, total: int) -> None:
        seen.append(beat.is_file())

    record_upload(engine, staff_id=staff_id, file_name="liste.csv", stored_path=kept, dry_run=False,  # type: ignore[arg-type]
                  now=datetime.now().astimezone())  # fmt: skip
    import_recorded(engine=engine, path=kept, listing_filter=ListingFilter(), rejects_dir=tmp_path,
                    dry_run=False, on_progress=progress, heartbeat_every=0.01)  # fmt: skip
    assert seen and all(seen)  # alive all along
    assert not beat.exists()  # and quiet once done: the row says « terminée » now

    kept.write_bytes(b"\x00\x01 pas une liste")
    with pytest.raises(ListingFileError):
        import_recorded(engine=engine, path=kept, listing_filter=ListingFilter(), rejects_dir=tmp_path,
                        dry_run=False, heartbeat_every=0.01)  # fmt: skip
    assert not beat.exists()


def test_a_file_no_upload_names_gets_no_heartbeat(engine: sa.Engine, tmp_path: Path) -> None:
    path = tmp_path / "liste.csv"
    path.write_text(LISTING)
    seen: list[bool] = []
    import_recorded(engine=engine, path=path, listing_filter=ListingFilter(), rejects_dir=tmp_path,
                    dry_run=False, on_progress=lambda done, total: seen.append(heartbeat_path(path).exists()))  # fmt: skip
    assert seen and not any(seen)
