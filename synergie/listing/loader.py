"""Loading a listing: validated rows upserted in batches, rejects written for Excel, the whole import in one transaction."""

from __future__ import annotations

import csv
import logging
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from models.db import DriverStatement
from models.enums import LocationPrecision, Source, Stage
from models.tables import Company, Contact
from synergie.listing.reading import (
    MAX_RECORD_BYTES,
    PREVIEW_BYTES,
    REJECTS_KEPT_IN_REPORT,
    FileLayout,
    ImportReport,
    ListingFileError,
    ListingFilter,
    ListingKind,
    ParityLost,
    ProgressCallback,
    ReadStats,
    Rejection,
    ScanMode,
    UndecodableRecord,
    commune_pattern,
    commune_prefilter,
    decode_leniently,
    decode_record,
    detect_layout,
    is_workbook,
    iter_matching_records,
    iter_records,
    scan_legal_units,
    sniff_csv,
    too_long_reason,
    workbook_to_csv,
)
from synergie.listing.rows import (
    NOT_DIFFUSIBLE,
    ListingRow,
    RowFilteredOut,
    RowNotDiffusible,
    RowRejected,
    name_key,
    validate_sirene_row,
    validate_synergie_row,
)

BATCH_SIZE = 1000

logger = logging.getLogger(__name__)

# ── loading ────────────────────────────────────────────────────────────────────────────


def _upsert(dialect: str) -> Callable[..., Any]:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _company_key(company: dict[str, Any]) -> tuple[str, ...]:
    if company["siret"]:
        return ("siret", company["siret"])
    return ("name", company["name_key"], company["postcode"])


INSERTED = ("siret", "name", "name_key", "naf_code", "staff_band", "address", "postcode",
            "commune", "commune_code", "latitude", "longitude", "location_precision")  # fmt: skip
UPDATABLE = ("name", "naf_code", "staff_band", "address", "postcode", "commune", "commune_code")
LOCATION = ("latitude", "longitude", "location_precision")


class ListingLoader:
    """Writes validated rows to the database in batches, in the caller's transaction."""

    def __init__(
        self, connection: sa.Connection, *, source: Source, now: datetime, dry_run: bool
    ) -> None:
        self.connection = connection
        self.source = source
        self.now = now
        self.dry_run = dry_run
        self.created = 0
        self.updated = 0
        self.contacts_created = 0
        self._insert = _upsert(connection.dialect.name)
        self._upserts: dict[tuple[str, ...], DriverStatement] = {}
        self._company = Company.__table__  # type: ignore[attr-defined]
        self._contact = Contact.__table__  # type: ignore[attr-defined]

    def load(self, rows: list[ListingRow]) -> None:
        """Upsert one batch of companies and their contacts."""
        companies: dict[tuple[str, ...], dict[str, Any]] = {}
        contacts: dict[tuple[str, ...], dict[str, dict[str, Any]]] = {}
        for row in rows:
            key = _company_key(row.company)
            previous = companies.get(key)
            # The same company twice in one file: later non-empty values win.
            companies[key] = (
                {**previous, **{k: v for k, v in row.company.items() if v is not None}}
                if previous
                else dict(row.company)
            )
            if row.contact:
                contacts.setdefault(key, {})[row.contact["identity"]] = row.contact
        existing = self._existing_ids(list(companies))
        self.created += sum(1 for key in companies if key not in existing)
        self.updated += sum(1 for key in companies if key in existing)
        if self.dry_run:
            return
        with_siret = [c for k, c in companies.items() if k[0] == "siret"]
        without = [c for k, c in companies.items() if k[0] == "name"]
        if with_siret:
            self._upsert_companies(with_siret, ["siret"], None)
        if without:
            self._upsert_companies(
                without, ["name_key", "postcode"], self._company.c.siret.is_(None)
            )
        if contacts:
            ids = self._existing_ids(list(contacts))
            self._upsert_contacts(
                [
                    {
                        **contact,
                        "company_id": ids[key],
                        "created_at": self.now,
                        "public_id": uuid.uuid4().hex,
                    }
                    for key, by_identity in contacts.items()
                    for contact in by_identity.values()
                ]
            )

    def _existing_ids(self, keys: list[tuple[str, ...]]) -> dict[tuple[str, ...], int]:
        table = self._company
        found: dict[tuple[str, ...], int] = {}
        sirets = [key[1] for key in keys if key[0] == "siret"]
        if sirets:
            # Plain SQL to the driver: building and binding a 1,000-value IN through
            # SQLAlchemy cost a fifth of a bulk load.
            mark = "?" if self.connection.dialect.paramstyle == "qmark" else "%s"
            sql = (
                f"SELECT id, siret FROM company WHERE siret IN ({', '.join([mark] * len(sirets))})"
            )
            for company_id, siret in self.connection.exec_driver_sql(sql, tuple(sirets)):
                found[("siret", siret)] = company_id
        names = [key for key in keys if key[0] == "name"]
        if names:
            query = sa.select(table.c.id, table.c.name_key, table.c.postcode).where(
                table.c.siret.is_(None), table.c.name_key.in_([key[1] for key in names])
            )
            for company_id, key_name, postcode in self.connection.execute(query):
                found[("name", key_name, postcode)] = company_id
        return found

    def _constant(self, value: Any, type_: Any) -> Any:
        # Rendered once into the statement: per-row bind processing of these constant
        # columns (enum and timestamp type decorators) cost more than SQLite's own work.
        rendered = sa.literal(value, type_).compile(
            dialect=self.connection.dialect, compile_kwargs={"literal_binds": True}
        )
        return sa.literal_column(str(rendered), type_)

    def _upsert_companies(
        self, companies: list[dict[str, Any]], conflict: list[str], where: Any
    ) -> None:
        empty = dict.fromkeys(INSERTED)
        self._company_upsert(tuple(conflict), where).execute_many(
            self.connection, [{**empty, **company} for company in companies]
        )

    def _company_upsert(self, conflict: tuple[str, ...], where: Any) -> DriverStatement:
        """The upsert for one conflict target, compiled once per import.

        The rows are plain strings and numbers, so they go to the driver's executemany
        as they are: SQLAlchemy's per-row parameter processing cost more than SQLite's
        own work for the insert.
        """
        if conflict in self._upserts:
            return self._upserts[conflict]
        table = self._company
        now = self._constant(self.now, table.c.created_at.type)
        statement = self._insert(table).values(
            source=self._constant(self.source.value, sa.String()),
            stage=self._constant(Stage.LISTED.value, sa.String()),
            created_at=now,
            updated_at=now,
        )
        new = statement.excluded
        # A commune's centroid never replaces the site's own position in the same commune.
        keep_site = sa.and_(
            new.location_precision == LocationPrecision.COMMUNE.value,
            table.c.location_precision == LocationPrecision.SITE.value,
            table.c.commune_code == new.commune_code,
        )
        statement = statement.on_conflict_do_update(
            index_elements=list(conflict),
            index_where=where,
            # Keep stage, source and history; an empty cell never erases what we knew.
            set_={
                **{
                    column: sa.func.coalesce(statement.excluded[column], table.c[column])
                    for column in UPDATABLE
                },
                **{
                    column: sa.case(
                        (keep_site, table.c[column]),
                        else_=sa.func.coalesce(new[column], table.c[column]),
                    )
                    for column in LOCATION
                },
                "name_key": statement.excluded.name_key,
                "updated_at": statement.excluded.updated_at,
            },
        )
        self._upserts[conflict] = DriverStatement(statement, column_keys=list(INSERTED))
        return self._upserts[conflict]

    def _upsert_contacts(self, contacts: list[dict[str, Any]]) -> None:
        table = self._contact
        before = self.connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        statement = self._insert(table)
        statement = statement.on_conflict_do_update(
            index_elements=["company_id", "identity"],
            set_={
                column: sa.func.coalesce(statement.excluded[column], table.c[column])
                for column in ("name", "role", "email", "phone")
            },
        )
        self.connection.execute(statement, contacts)
        after = self.connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        self.contacts_created += after - before


# ── the whole import ───────────────────────────────────────────────────────────────────


# A cell starting with one of these is a formula to Excel, LibreOffice or Google Sheets
# (OWASP, "CSV Injection"): written with a leading apostrophe, it is shown as text.
FORMULA_LEADERS = ("=", "+", "-", "@", "\t", "\r")


def inert_cell(value: str) -> str:
    """Return ``value`` made safe to open in a spreadsheet: a leading ``'`` if it could be a formula."""
    return f"'{value}" if value.startswith(FORMULA_LEADERS) else value


class _RejectsWriter:
    """Writes rejected rows to a CSV (opened on the first one) that Excel opens correctly, formulas defused."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None
        self._writer: Any = None

    def write(self, rejection: Rejection) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("w", encoding="utf-8-sig", newline="")
            self._writer = csv.writer(self._handle, delimiter=";")
            self._writer.writerow(["ligne", "motif", "contenu"])
        row = (str(rejection.line), rejection.reason, rejection.raw)
        self._writer.writerow([inert_cell(cell) for cell in row])

    def close(self) -> str | None:
        if self._handle is None:
            return None
        self._handle.close()
        return str(self.path)


def _parse(text: str, delimiter: str, *, strict: bool = False) -> list[str]:
    """The fields of one record."""
    return next(csv.reader((text,), delimiter=delimiter, strict=strict))


def _check_quotes(text: str, delimiter: str, line: int) -> None:
    """Raise RowRejected, saying where, when the quotes of a record do not pair up.

    A quote inside a field (``Garage 5" pouces``) is fine; a field that opens a quote
    and never closes it would otherwise be read with the rest of the line inside it.
    """
    try:
        _parse(text, delimiter, strict=True)
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise RowRejected(
                f"guillemet ouvert ligne {line} et jamais refermé : cette ligne est rejetée "
                "seule, les suivantes sont lues normalement ; retirez ou doublez ce guillemet"
            ) from None
        raise RowRejected(
            f"guillemets mal placés ligne {line} ({exc}) : un champ entre guillemets doit "
            'être suivi du séparateur ; doublez un guillemet voulu (""), ou retirez-le'
        ) from None


def import_listing(
    *,
    engine: sa.Engine,
    path: Path,
    listing_filter: ListingFilter,
    rejects_dir: Path,
    now: datetime | None = None,
    dry_run: bool = False,
    on_progress: ProgressCallback | None = None,
    legal_units: Path | None = None,
) -> ImportReport:
    """Import a listing file into the database, in one transaction, and return what happened.

    ``legal_units`` is SIRENE's StockUniteLegale beside a StockEtablissement: it names the
    sites that have neither usual name nor sign, and its diffusion status is respected.
    Raises ListingFileError, before writing anything, when a file cannot be read at all.
    """
    path = Path(path)
    if legal_units is not None:
        legal_units = Path(legal_units)
        sniff_csv(legal_units)  # unreadable: said now, before the long scan of the sites
    if is_workbook(path):
        # A workbook is imported through its CSV rendering: one reader, the same rules.
        with tempfile.TemporaryDirectory(prefix="synergie-xlsx-") as folder:
            report = import_listing(
                engine=engine, path=workbook_to_csv(path, Path(folder) / f"{path.stem}.csv"),
                listing_filter=listing_filter, rejects_dir=rejects_dir, now=now, dry_run=dry_run,
                on_progress=on_progress, legal_units=legal_units,
            )  # fmt: skip
        report.path = str(path)
        return report
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    layout = detect_layout(path)
    if legal_units is not None and layout.kind != ListingKind.SIRENE:
        raise ListingFileError(
            f"le fichier des unités légales ({legal_units.name}) ne s'utilise qu'avec un fichier "
            f"SIRENE des établissements (StockEtablissement) ; {path.name} n'en est pas un"
        )
    rejects_path = rejects_dir / f"rejets-{path.stem}-{now.strftime('%Y%m%d-%H%M%S')}.csv"
    # In a SIRENE file the commune code is a bare field: records without it can be skipped
    # unparsed. In our own CSV the column may be absent, so every row is read.
    scans: tuple[ScanMode, ...] = ("plain",)
    if layout.kind == ListingKind.SIRENE and listing_filter.communes:
        scans = ("lines", "parity", "plain")
    for mode in scans:
        try:
            report = _import(
                engine, path, layout, listing_filter, rejects_path, now, dry_run, on_progress, mode,
                legal_units,
            )  # fmt: skip
            break
        except ParityLost:
            # Nothing was written (one transaction): read again the safer way.
            logger.warning(
                "%s: the %s scan cannot tell records apart, trying again", path.name, mode
            )
    report.seconds = time.perf_counter() - started
    return report


def _import(
    engine: sa.Engine,
    path: Path,
    layout: FileLayout,
    listing_filter: ListingFilter,
    rejects_path: Path,
    now: datetime,
    dry_run: bool,
    on_progress: ProgressCallback | None,
    mode: ScanMode,
    legal_units: Path | None,
) -> ImportReport:
    report = ImportReport(str(path), layout.kind, layout.encoding, layout.delimiter, dry_run)
    validate: Callable[..., ListingRow] = validate_synergie_row
    if layout.kind == ListingKind.SIRENE:
        validate = partial(validate_sirene_row, name_later=legal_units is not None)
    source = Source.SIRENE if layout.kind == ListingKind.SIRENE else Source.LISTING
    rejects = _RejectsWriter(rejects_path)
    sites_bytes = path.stat().st_size
    total_bytes = sites_bytes + (legal_units.stat().st_size if legal_units else 0)
    progress = (lambda done: on_progress(done, total_bytes)) if on_progress else None
    width = len(layout.header)

    def reject(line: int, reason: str, raw: str) -> None:
        rejection = Rejection(line, reason, raw.rstrip("\r\n"))
        report.rejected += 1
        if len(report.rejections) < REJECTS_KEPT_IN_REPORT:
            report.rejections.append(rejection)
        rejects.write(rejection)

    def note_unplaced(row: ListingRow, raw: str) -> None:
        rejection = Rejection(row.line, f"importée sans code commune : {row.problem}", raw)
        report.unplaced += 1
        if len(report.unplaced_rows) < REJECTS_KEPT_IN_REPORT:
            report.unplaced_rows.append(rejection)
        rejects.write(rejection)

    def reject_unread(line: int, reason: str, start: bytes) -> None:
        reject(line, reason, decode_leniently(start) + "…")

    def well_quoted(raw: bytes) -> bool:
        # Only a record over several lines is checked: its quotes must really pair up.
        try:
            fields = _parse(decode_leniently(raw), layout.delimiter, strict=True)
        except csv.Error:
            return False
        return len(fields) == width

    stats = ReadStats()
    try:
        with engine.begin() as connection, path.open("rb") as handle:
            loader = ListingLoader(connection, source=source, now=now, dry_run=dry_run)
            if mode == "plain":
                records = iter_records(
                    handle, skip_lines=layout.header_lines, on_bytes=progress, stats=stats,
                    prefilter=commune_prefilter(listing_filter.communes) if layout.kind == ListingKind.SIRENE else None,
                    record_fits=well_quoted, on_problem=reject_unread,
                )  # fmt: skip
            else:

                def fits(raw: bytes) -> bool:
                    try:
                        fields = _parse(decode_leniently(raw), layout.delimiter)
                    except csv.Error:  # a wrong guess of where the record starts
                        return False
                    return len(fields) == width

                records = iter_matching_records(
                    handle, skip_lines=layout.header_lines, on_bytes=progress, stats=stats,
                    pattern=commune_pattern(listing_filter.communes),
                    record_fits=fits if mode == "lines" else None, on_problem=reject_unread,
                )  # fmt: skip
            batch: list[ListingRow] = []
            held: list[tuple[ListingRow, str]] = []
            for line, raw in records:
                if len(raw) > MAX_RECORD_BYTES:
                    reject_unread(line, too_long_reason(len(raw)), raw[:PREVIEW_BYTES])
                    continue
                try:
                    text = decode_record(raw)
                except UndecodableRecord as exc:
                    # Only this row: the others of the file are read as usual.
                    reject(line, str(exc), exc.text)
                    continue
                try:
                    fields = _parse(text, layout.delimiter)
                    if mode != "plain" and len(fields) != width:
                        raise ParityLost
                    try:
                        row = validate(fields, layout.columns, listing_filter, line)
                    except RowRejected:
                        if b'"' in raw:  # a stray quote is the likelier cause: say so
                            _check_quotes(text, layout.delimiter, line)
                        raise
                    if b'"' in raw:
                        _check_quotes(text, layout.delimiter, line)
                    if legal_units is not None:
                        # Held until the legal units are read: their diffusion status decides.
                        held.append(
                            (row, text if row.company["name"] is None or row.problem else "")
                        )
                    else:
                        if row.problem:
                            note_unplaced(row, text.rstrip("\r\n"))
                        batch.append(row)
                except RowNotDiffusible:
                    report.not_diffusible += 1
                    continue
                except RowFilteredOut:
                    continue
                except RowRejected as exc:
                    reject(line, str(exc), text)
                    continue
                except csv.Error as exc:
                    reject(line, f"ligne CSV mal formée ({exc})", text)
                    continue
                report.accepted += 1
                if len(batch) >= BATCH_SIZE:
                    loader.load(batch)
                    batch = []
            if legal_units is not None:
                on_legal = (lambda done: progress(sites_bytes + done)) if progress else None
                batch = _name_from_legal_units(
                    held, legal_units, report, reject, note_unplaced, on_legal
                )
                for start in range(0, len(batch), BATCH_SIZE):
                    loader.load(batch[start : start + BATCH_SIZE])
            elif batch:
                loader.load(batch)
    finally:
        report.rejects_path = rejects.close()
    report.rows_read = stats.records
    report.created, report.updated = loader.created, loader.updated
    report.filtered_out = (
        report.rows_read - report.accepted - report.rejected - report.not_diffusible
    )
    report.contacts_created = loader.contacts_created
    return report


def _name_from_legal_units(
    held: list[tuple[ListingRow, str]],
    legal_units: Path,
    report: ImportReport,
    reject: Callable[[int, str, str], None],
    note_unplaced: Callable[[ListingRow, str], None],
    on_bytes: Callable[[int], None] | None,
) -> list[ListingRow]:
    """The held sites that may be imported, named after their legal unit when they have no name."""
    units, report.legal_units_read = scan_legal_units(
        legal_units, {row.company["siret"][:9] for row, _ in held}, on_bytes=on_bytes
    )
    report.legal_units_path = str(legal_units)
    kept: list[ListingRow] = []
    for row, text in held:
        siren = row.company["siret"][:9]
        unit = units.get(siren)
        if unit is not None and unit.diffusion in NOT_DIFFUSIBLE:
            report.accepted -= 1
            report.not_diffusible += 1
            continue
        if row.company["name"] is None:
            if unit is None or not unit.name:
                report.accepted -= 1
                reject(
                    row.line,
                    f"établissement sans dénomination usuelle ni enseigne, et unité légale {siren} "
                    + ("sans nom" if unit else "absente du fichier des unités légales"),
                    text,
                )
                continue
            row.company["name"] = unit.name[:300]
            row.company["name_key"] = name_key(unit.name)
            report.named_from_legal_units += 1
        if row.problem:
            note_unplaced(row, text)
        kept.append(row)
    return kept
