"""Importing flows from a CSV (one row per flow): the listing's reading and rejects machinery, the inventory's checks."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models.inventory import FlowOrigin, MaterialFlow
from models.tables import Company
from synergie.inventory.rows import FIELDS, FlowRejected, FlowRow, is_blank, validate_flow
from synergie.inventory.store import add_flows
from synergie.listing.loader import _RejectsWriter
from synergie.listing.reading import (
    REJECTS_KEPT_IN_REPORT,
    ListingFileError,
    Rejection,
    _open_binary,
    decode_record,
    iter_records,
    normalise_header,
    sniff_csv,
)

__all__ = ["COLUMNS", "FlowImportReport", "import_flows"]

# Column → accepted header spellings (after normalise_header: lower case, no accents, "_").
COLUMNS: dict[str, tuple[str, ...]] = {
    "siret": ("siret", "n_siret", "numero_siret"),
    "direction": ("sens", "direction"),
    "description": ("matiere", "description", "designation", "flux"),
    "category": ("categorie", "category", "famille"),
    "waste_code": ("code_dechet", "code_de_dechet", "code_led", "code_ced", "code"),
    "quantity": ("quantite", "quantity"),
    "unit": ("unite", "unit"),
    "frequency": ("frequence", "par", "periode", "per"),
    "outlet": ("exutoire", "filiere", "destination", "origine", "outlet"),
    "trips_per_month": ("trajets_par_mois", "trajets", "camions_par_mois", "trips"),
    "km_per_trip": ("km_par_trajet", "km", "distance_km"),
    "amount_eur": ("montant", "montant_eur", "cout_ou_valeur", "amount"),
    "money_kind": ("cout_ou_recette", "type_montant", "nature_montant"),
    "note": ("note", "remarque", "commentaire"),
}


@dataclass
class FlowImportReport:
    """What an import of flows did, for the screen and the tests."""

    path: str
    dry_run: bool
    rows_read: int = 0
    imported: int = 0
    companies: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    rejects_path: str | None = None


def _columns(header: tuple[str, ...], path: Path) -> dict[str, int]:
    spelled = {normalise_header(name): index for index, name in enumerate(header)}
    columns = {}
    for canonical, aliases in COLUMNS.items():
        for alias in aliases:
            if alias in spelled:
                columns[canonical] = spelled[alias]
                break
    missing = [
        name for name in ("siret", "direction", "description", "quantity") if name not in columns
    ]
    if missing:
        raise ListingFileError(
            f"{path.name} : colonne(s) {', '.join(COLUMNS[m][0] for m in missing)} manquante(s) "
            f"dans l'en-tête ({', '.join(header[:8])}) ; voir les colonnes attendues dans le README"
        )
    return columns


def import_flows(
    *,
    engine: sa.Engine,
    path: Path,
    rejects_dir: Path,
    actor: str,
    now: datetime,
    dry_run: bool = False,
) -> FlowImportReport:
    """Import a CSV of flows in one transaction; bad rows are rejected with their line and reason.

    Importing a file again replaces the imported flows of the companies it names (staff-entered
    and portal flows stay). Raises ListingFileError, before writing anything, when the file
    cannot be read at all.
    """
    path = Path(path)
    shape = sniff_csv(path)
    columns = _columns(shape.header, path)
    report = FlowImportReport(str(path), dry_run)
    rejects = _RejectsWriter(
        rejects_dir / f"rejets-{path.stem}-{now.strftime('%Y%m%d-%H%M%S')}.csv"
    )

    def reject(line: int, reason: str, raw: str) -> None:
        rejection = Rejection(line, reason, raw.rstrip("\r\n"))
        report.rejected += 1
        if len(report.rejections) < REJECTS_KEPT_IN_REPORT:
            report.rejections.append(rejection)
        rejects.write(rejection)

    accepted: dict[int, list[FlowRow]] = {}
    companies: dict[str, Company | None] = {}
    try:
        with Session(engine) as session, _open_binary(path) as handle:
            for line, raw in iter_records(handle, skip_lines=shape.header_lines):
                text = decode_record(raw)
                try:
                    fields = next(csv.reader((text,), delimiter=shape.delimiter))
                except csv.Error as exc:
                    reject(line, f"ligne CSV mal formée ({exc})", text)
                    continue
                values = {name: fields[i] if i < len(fields) else "" for name, i in columns.items()}
                if is_blank(values) and not values.get("siret", "").strip():
                    continue
                report.rows_read += 1
                siret = values.get("siret", "").replace(" ", "").strip()
                if siret not in companies:
                    companies[siret] = (
                        session.exec(select(Company).where(Company.siret == siret)).first()
                        if siret
                        else None
                    )
                company = companies[siret]
                try:
                    row = validate_flow({name: values.get(name, "") for name in FIELDS})
                except FlowRejected as exc:
                    reasons = str(exc)
                    if company is None:
                        reasons = f"SIRET : {_unknown(siret)} ; {reasons}"
                    reject(line, reasons, text)
                    continue
                if company is None:
                    reject(line, f"SIRET : {_unknown(siret)}", text)
                    continue
                accepted.setdefault(company.id, []).append(row)  # type: ignore[arg-type]
            by_id = {c.id: c for c in companies.values() if c is not None}
            for company_id, rows in accepted.items():
                session.execute(
                    sa.delete(MaterialFlow).where(
                        col(MaterialFlow.company_id) == company_id,
                        col(MaterialFlow.origin) == FlowOrigin.IMPORT,
                    )
                )
                add_flows(session=session, company=by_id[company_id], rows=rows,
                          origin=FlowOrigin.IMPORT, actor=actor, now=now)  # fmt: skip
                report.imported += len(rows)
            report.companies = len(accepted)
            if dry_run:
                session.rollback()
            else:
                session.commit()
    finally:
        report.rejects_path = rejects.close()
    return report


def _unknown(siret: str) -> str:
    if not siret:
        return "à remplir"
    return f"aucune entreprise avec le SIRET {siret} dans la liste"
