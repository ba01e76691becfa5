"""Issue 9, item 5: a bad row never stops an import, nor damages more than itself.

Each test reproduces what used to happen: a byte undefined in cp1252 raised
UnicodeDecodeError and aborted the import; a stray opening quote was read with the rest of
its line inside one field (and could pair with a quote further down); a 20 MB line was
held whole, taking ~200 MB.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from models import Company
from synergie.listing.loader import import_listing
from synergie.listing.reading import (
    FAST_BLOCK_BYTES,
    MAX_RECORD_BYTES,
    ImportReport,
    ListingFilter,
)
from tests.factories import NOW, luhn_siret
from tests.synergie.listing.test_sirene import NUITS, row, write

HEADER = "siret;raison_sociale;code_postal\n"


def run(engine: sa.Engine, path: Path, tmp_path: Path, **kwargs: object) -> ImportReport:
    listing_filter = kwargs.pop("listing_filter", ListingFilter())
    return import_listing(
        engine=engine, path=path, listing_filter=listing_filter, rejects_dir=tmp_path / "reports",  # type: ignore[arg-type]
        now=NOW, **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


def names(engine: sa.Engine) -> set[str]:
    with Session(engine) as session:
        return set(session.exec(select(Company.name)))


def lines(count: int, start: int = 0) -> list[bytes]:
    return [
        f"{luhn_siret(start + n)};Entreprise {start + n};21700\n".encode() for n in range(count)
    ]


@pytest.mark.parametrize("byte", [0x81, 0x8D, 0x8F, 0x90, 0x9D])
@pytest.mark.parametrize("encoding", ["cp1252", "utf-8"])
def test_a_byte_undefined_in_cp1252_rejects_its_row_only(
    engine: sa.Engine, tmp_path: Path, byte: int, encoding: str
) -> None:
    rows = lines(5)
    rows[2] = f"{luhn_siret(900)};Société Générale".encode(encoding) + bytes([byte]) + b";21700\n"
    path = tmp_path / "octet.csv"
    path.write_bytes(HEADER.encode() + b"".join(rows))

    report = run(engine, path, tmp_path)

    assert (report.created, report.rejected) == (4, 1)
    [rejection] = report.rejections
    assert rejection.line == 4
    assert f"octet 0x{byte:02X}" in rejection.reason and "CSV UTF-8" in rejection.reason
    assert "Société Générale" in rejection.raw  # shown readable, the bad byte replaced
    assert names(engine) == {f"Entreprise {n}" for n in (0, 1, 3, 4)}


def test_a_stray_opening_quote_costs_its_own_row_and_says_where(
    engine: sa.Engine, tmp_path: Path
) -> None:
    rows = [f"{luhn_siret(n)};Entreprise {n} de la zone artisanale;21700\n".encode()
            for n in range(35_000)]  # ~2 MB, as in the report  # fmt: skip
    rows[4] = f'{luhn_siret(4)};"Garage du Centre;21700\n'.encode()  # opened, never closed
    # Further down, a quote inside a field: legitimate, and it must not pair with the first.
    rows[12] = f'{luhn_siret(12)};Vis 3" inox;21700\n'.encode()
    path = tmp_path / "guillemet.csv"
    path.write_bytes(HEADER.encode() + b"".join(rows))
    assert path.stat().st_size > 2_000_000

    report = run(engine, path, tmp_path)

    assert (report.rows_read, report.created, report.rejected) == (35_000, 34_999, 1)
    [rejection] = report.rejections
    assert rejection.line == 6  # the header is line 1
    assert "guillemet ouvert ligne 6 et jamais refermé" in rejection.reason
    found = names(engine)
    assert 'Vis 3" inox' in found and not any("Garage" in name for name in found)


def test_quotes_that_pair_across_lines_wrongly_are_read_again_line_by_line(
    engine: sa.Engine, tmp_path: Path
) -> None:
    rows = lines(8)
    rows[1] = f'{luhn_siret(1)};"Garage du Centre;21700\n'.encode()
    rows[4] = f'{luhn_siret(4)};Vis 3" inox;21700\n'.encode()  # closes the quote of line 3
    path = tmp_path / "paire.csv"
    path.write_bytes(HEADER.encode() + b"".join(rows))

    report = run(engine, path, tmp_path)

    assert (report.created, report.rejected) == (7, 1)
    assert [r.line for r in report.rejections] == [3]
    assert 'Vis 3" inox' in names(engine)


def test_a_stray_quote_in_a_filtered_sirene_extract_costs_one_row(
    engine: sa.Engine, tmp_path: Path
) -> None:
    path = write(tmp_path / "stock.csv", [row(n) for n in range(1, 40)])
    text = path.read_text().splitlines()
    text[5] = text[5].replace("ENTREPRISE 5", '"ENTREPRISE 5')  # line 6, opened, never closed
    path.write_text("\n".join(text) + "\n")

    report = run(engine, path, tmp_path, listing_filter=ListingFilter(communes=frozenset({NUITS})))

    assert (report.created, report.rejected) == (38, 1)
    assert "guillemet ouvert ligne 6" in report.rejections[0].reason


def _peak_of(
    engine: sa.Engine, path: Path, tmp_path: Path, **kwargs: object
) -> tuple[ImportReport, int]:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        report = run(engine, path, tmp_path, **kwargs)
        return report, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


LONG = 20_000_000  # bytes in the one long line


def test_a_20_mb_line_is_rejected_without_being_held_in_memory(
    engine: sa.Engine, tmp_path: Path
) -> None:
    rows = lines(200)
    normal = tmp_path / "normal.csv"
    normal.write_bytes(HEADER.encode() + b"".join(rows))
    long = tmp_path / "longue.csv"
    long.write_bytes(
        HEADER.encode() + b"".join(rows[:100]) + f"{luhn_siret(999)};".encode() + b"X" * LONG
        + b";21700\n" + b"".join(lines(100, start=1000))
    )  # fmt: skip

    _, baseline = _peak_of(engine, normal, tmp_path)
    report, peak = _peak_of(engine, long, tmp_path)

    assert (report.imported, report.rejected) == (200, 1)  # all but the long line
    [rejection] = report.rejections
    assert rejection.line == 102 and "ligne beaucoup trop longue" in rejection.reason
    assert len(rejection.raw) < 1000
    # Read in reads of MAX_RECORD_BYTES: it used to take ~200 MB more than the baseline.
    assert peak - baseline < 16 * MAX_RECORD_BYTES


def test_a_20_mb_line_in_a_sirene_extract_is_rejected_by_the_fast_scan_too(
    engine: sa.Engine, tmp_path: Path
) -> None:
    wanted = ListingFilter(communes=frozenset({NUITS}))
    normal = write(tmp_path / "stock.csv", [row(n) for n in range(1, 200)])
    text = normal.read_text().split("\n")
    text.insert(50, text[50].replace("ENTREPRISE", "E" * LONG))
    long = tmp_path / "stock-longue.csv"
    long.write_text("\n".join(text))

    _, baseline = _peak_of(engine, normal, tmp_path, listing_filter=wanted)
    report, peak = _peak_of(engine, long, tmp_path, listing_filter=wanted)

    assert (report.imported, report.rejected) == (199, 1)
    assert report.rejections[0].line == 51
    assert "ligne beaucoup trop longue" in report.rejections[0].reason
    # Scanned in blocks: at most a block carried over and the next one read.
    assert peak - baseline < 3 * FAST_BLOCK_BYTES
