"""Listings uploaded on the staff portal: the ``listing_upload`` row, and the import that fills it.

The portal records the upload (queued), then the import runs either in the portal's process or
in the ``import-listing`` run its event started; both call :func:`import_recorded`, which finds
the row by the file's path, marks it running, and writes the counts, the rejects file and, on
failure, a French reason. A run on a file no upload names (the CLI, the Prefect form) records
nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import col

from models.db import write_transaction
from models.enums import UploadStatus
from models.tables import ListingUpload
from synergie.listing.loader import import_listing
from synergie.listing.reading import ImportReport, ListingFileError, ListingFilter, ProgressCallback

__all__ = ["SHOWN_REJECTIONS", "UNEXPECTED_FAILURE", "import_recorded", "record_upload"]

logger = logging.getLogger(__name__)

SHOWN_REJECTIONS = 50  # rejected rows kept on the row for the page; the file has them all
UNEXPECTED_FAILURE = (
    "L'importation s'est arrêtée sur une erreur inattendue ; rien n'a été écrit. "
    "Réessayez, et si cela recommence, prévenez l'équipe technique (le détail est dans ses journaux)."
)


def _key(path: Path | str) -> str:
    return str(Path(path).resolve())


def record_upload(
    engine: sa.Engine,
    *,
    staff_id: int,
    file_name: str,
    stored_path: Path,
    dry_run: bool,
    now: datetime,
) -> int:
    """Record a kept upload, queued for import; return its id."""
    with write_transaction(engine) as connection:
        upload_id = cast(
            int,
            connection.execute(
                sa.insert(ListingUpload)
                .values(
                    staff_id=staff_id,
                    file_name=file_name[:300],
                    stored_path=_key(stored_path),
                    dry_run=dry_run,
                    status=UploadStatus.QUEUED,
                    rejections=[],
                    unplaced_rows=[],
                    uploaded_at=now,
                )
                .returning(col(ListingUpload.id))
            ).scalar_one(),
        )
        return upload_id


def _update(engine: sa.Engine, path: Path, **values: Any) -> bool:
    with write_transaction(engine) as connection:
        changed = connection.execute(
            sa.update(ListingUpload)
            .where(col(ListingUpload.stored_path) == _key(path))
            .values(**values)
        ).rowcount
    return bool(changed)


def import_recorded(
    *,
    engine: sa.Engine,
    path: Path,
    listing_filter: ListingFilter,
    rejects_dir: Path,
    dry_run: bool,
    now: datetime | None = None,
    on_progress: ProgressCallback | None = None,
    legal_units: Path | None = None,
) -> ImportReport:
    """Import ``path`` like :func:`import_listing`, recording the outcome on its upload row, if any.

    Re-raises what the import raised, after recording it as a failure.
    """
    started = now or datetime.now(UTC)
    recorded = _update(engine, path, status=UploadStatus.RUNNING, started_at=started)
    try:
        report = import_listing(
            engine=engine, path=path, listing_filter=listing_filter, rejects_dir=rejects_dir,
            now=now, dry_run=dry_run, on_progress=on_progress, legal_units=legal_units,
        )  # fmt: skip
    except Exception as exc:
        if recorded:
            error = str(exc) if isinstance(exc, ListingFileError) else UNEXPECTED_FAILURE
            _update(engine, path, status=UploadStatus.FAILED, error=error[:2000],
                    finished_at=datetime.now(UTC) if now is None else now)  # fmt: skip
        raise
    if recorded:
        _update(
            engine, path, status=UploadStatus.DONE, kind=str(report.kind)[:20],
            rows_read=report.rows_read, filtered_out=report.filtered_out, created=report.created,
            updated=report.updated, rejected=report.rejected,
            not_diffusible=report.not_diffusible, unplaced=report.unplaced,
            rejections=[[r.line, r.reason] for r in report.rejections[:SHOWN_REJECTIONS]],
            unplaced_rows=[[r.line, r.reason] for r in report.unplaced_rows[:SHOWN_REJECTIONS]],
            rejects_path=report.rejects_path, error=None,
            finished_at=datetime.now(UTC) if now is None else now,
        )  # fmt: skip
        logger.info("upload %s imported: %d rows read, %d rejected", path.name, report.rows_read,
                    report.rejected)  # fmt: skip
    return report
