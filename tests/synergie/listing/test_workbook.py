"""Excel workbooks (.xlsx) import like CSV files: same columns, filters and rejects, spreadsheet row numbers."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from openpyxl import Workbook
from sqlmodel import Session, select
from typer.testing import CliRunner

from models import Company
from synergie.listing.loader import import_listing
from synergie.listing.reading import ListingFileError, ListingFilter, ListingKind, detect_layout
from tests.factories import NOW

ROWS = [
    ["siret", "raison_sociale", "code_commune", "code_postal", "commune", "courriel", "créée le"],
    [73282932000074, "Tonnellerie Meunier", "21295", 21700, "Nuits-Saint-Georges", "contact@meunier.example", date(2001, 5, 3)],
    ["12345678900000", "Siret faux", "21295", 21700, "Nuits-Saint-Georges", "a@b.example", None],
    [35600000000048, "Scierie Vallet", "21464", 21220, "Gevrey-Chambertin", None, None],
]  # fmt: skip


def workbook(path: Path, rows: list[list[object]] = ROWS) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def test_a_workbook_imports_with_the_filters_and_spreadsheet_row_numbers(
    engine: sa.Engine, tmp_path: Path
) -> None:
    path = workbook(tmp_path / "liste.xlsx")
    assert detect_layout(path).kind == ListingKind.SYNERGIE
    report = import_listing(
        engine=engine, path=path, listing_filter=ListingFilter(communes=frozenset({"21295"})),
        rejects_dir=tmp_path / "rejets", now=NOW,
    )  # fmt: skip
    assert (report.created, report.rejected, report.filtered_out) == (1, 1, 1)
    assert report.path == str(path)
    assert [r.line for r in report.rejections] == [3]  # row 3 of the sheet
    with Session(engine) as session:
        company = session.exec(select(Company)).one()
    # Numbers typed in cells come back without ".0": the SIRET and postcode are intact.
    assert (company.siret, company.postcode) == ("73282932000074", "21700")


def test_a_broken_workbook_is_refused_in_french(tmp_path: Path) -> None:
    path = tmp_path / "abime.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ListingFileError, match="classeur Excel mais ne s'ouvre pas"):
        detect_layout(path)


def test_the_cli_imports_a_workbook(
    sqlite_settings: object, prefect_harness: None, tmp_path: Path
) -> None:
    from synergie.cli.app import app

    path = workbook(tmp_path / "liste.xlsx")
    result = CliRunner().invoke(app, ["import", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "enregistrez-le" not in result.output
    assert "Nouvelles entreprises" in result.output
