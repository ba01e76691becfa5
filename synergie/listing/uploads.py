"""Listings uploaded on the staff portal: the ``listing_upload`` row, and the import that fills it.

The portal records the upload (queued), then the import runs either in the portal's process or
in the ``import-listing`` run its event started; both call :func:`import_recorded`, which finds
the row by the file's path, marks it running, and writes the counts, the rejects file and, on
failure, a French reason. A run on a file no upload names (the CLI, the Prefect form) records
nothing.

While it runs, the import touches a file beside the upload every ``HEARTBEAT_SECONDS``
(:func:`heartbeat_path`): if its process dies, the row stays « en cours » but the page sees
the file go quiet (:func:`last_sign_of_life`). A file, not the row: the import's one
transaction holds SQLite's write lock until it ends, and the portal and the workers share the
data directory anyway (the upload is read from it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import col

from models.db import write_transaction
from models.enums import UploadStatus
from models.tables import ListingUpload
from synergie.listing.loader import import_listing
from synergie.listing.reading import ImportReport, ListingFileError, ListingFilter, ProgressCallback

__all__ = [
    "HEARTBEAT_SECONDS",
    "SHOWN_REJECTIONS",
    "UNEXPECTED_FAILURE",
    "heartbeat_path",
    "import_recorded",
    "last_sign_of_life",
    "record_upload",
    "silence",
]

logger = logging.getLogger(__name__)

SHOWN_REJECTIONS = 50  # rejected rows kept on the row for the page; the file has them all
UNEXPECTED_FAILURE = (
    "L'importation s'est arrêtée sur une erreur inattendue ; rien n'a été écrit. "
    "Réessayez, et si cela recommence, prévenez l'équipe technique (le détail est dans ses journaux)."
)


HEARTBEAT_SECONDS = 15.0


def _key(path: Path | str) -> str:
    return str(Path(path).resolve())


def heartbeat_path(stored_path: Path | str) -> Path:
    """The file a running import of ``stored_path`` touches to say it is alive."""
    path = Path(stored_path)
    return path.with_name(path.name + ".vivant")


def last_sign_of_life(upload: ListingUpload) -> datetime | None:
    """When the upload's import last said it was alive: its start, or its heartbeat file's time."""
    moments = [upload.started_at] if upload.started_at else []
    with suppress(OSError):
        moments.append(
            datetime.fromtimestamp(heartbeat_path(upload.stored_path).stat().st_mtime, UTC)
        )
    return max(moments) if moments else None


def silence(upload: ListingUpload, now: datetime) -> timedelta:
    """How long a pending upload has said nothing: queued, since it was uploaded; running, since
    its import's last sign of life; zero once its import ended."""
    if upload.status == UploadStatus.QUEUED:
        return now - upload.uploaded_at
    if upload.status == UploadStatus.RUNNING:
        return now - (last_sign_of_life(upload) or upload.uploaded_at)
    return timedelta(0)


@contextmanager
def _heartbeat(path: Path, every: float) -> Iterator[None]:
    """Touch ``path`` now and every ``every`` seconds until the block ends, then remove it."""
    stop = threading.Event()

    def touch() -> bool:
        try:
            path.touch()
        except OSError as exc:
            logger.warning("upload heartbeat %s stopped: %s", path, exc)
            return False
        return True

    def beat() -> None:
        while not stop.wait(every) and touch():
            pass

    touch()  # before the import starts: alive from its first moment

    thread = threading.Thread(target=beat, name="upload-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        path.unlink(missing_ok=True)


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
    heartbeat_every: float = HEARTBEAT_SECONDS,
) -> ImportReport:
    """Import ``path`` like :func:`import_listing`, recording the outcome on its upload row, if any.

    Re-raises what the import raised, after recording it as a failure.
    """
    started = now or datetime.now(UTC)
    recorded = _update(engine, path, status=UploadStatus.RUNNING, started_at=started)
    try:
        with _heartbeat(heartbeat_path(path), heartbeat_every) if recorded else nullcontext():
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
