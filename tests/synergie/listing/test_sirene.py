"""SIRENE StockEtablissement imports: filters, names and addresses, quoted newlines, the fast scan."""

from __future__ import annotations

import csv
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, select

from bench.sirene_gen import SIRENE_COLUMNS, write_sirene_file
from models import Company, Source
from synergie.listing.loader import import_listing
from synergie.listing.reading import ListingFilter, ListingKind
from tests.factories import NOW, luhn_siret

NUITS, GEVREY, BEAUNE = "21464", "21295", "21054"


def row(n: int, **values: str) -> dict[str, str]:
    """A StockEtablissement row with plausible values, overridden by ``values``."""
    siret = luhn_siret(300 + n)
    base = {name: "" for name in SIRENE_COLUMNS}
    base.update(
        siren=siret[:9], nic=siret[9:], siret=siret, etatAdministratifEtablissement="A",
        codeCommuneEtablissement=NUITS, codePostalEtablissement="21700",
        libelleCommuneEtablissement="NUITS-SAINT-GEORGES", activitePrincipaleEtablissement="16.23Z",
        trancheEffectifsEtablissement="11", denominationUsuelleEtablissement=f"ENTREPRISE {n}",
        numeroVoieEtablissement="3", typeVoieEtablissement="RUE", libelleVoieEtablissement="DES FRERES",
    )  # fmt: skip
    base.update(values)
    return base


def write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=SIRENE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def run(engine: sa.Engine, path: Path, tmp_path: Path, listing_filter: ListingFilter):  # type: ignore[no-untyped-def]
    return import_listing(engine=engine, path=path, listing_filter=listing_filter,
                          rejects_dir=tmp_path / "reports", now=NOW)  # fmt: skip


def imported(engine: sa.Engine) -> dict[str, Company]:
    with Session(engine) as session:
        return {c.siret or "": c for c in session.exec(select(Company))}


def test_filters_names_and_addresses(engine: sa.Engine, tmp_path: Path) -> None:
    rows = [
        row(1),  # kept
        row(2, codeCommuneEtablissement=BEAUNE),  # another commune
        row(3, etatAdministratifEtablissement="F"),  # closed
        row(4, activitePrincipaleEtablissement="47.11B"),  # not a wanted NAF
        row(5, trancheEffectifsEtablissement="02"),  # too small
        row(6, trancheEffectifsEtablissement="NN"),  # unknown staff band
        row(
            7,
            codeCommuneEtablissement=GEVREY,
            activitePrincipaleEtablissement="17.21A",
            denominationUsuelleEtablissement="",
            enseigne1Etablissement="CARTONNAGES DU MEIX",
        ),  # fmt: skip
        row(8, denominationUsuelleEtablissement=""),  # no name at all: rejected
        row(
            9, codeCommune2Etablissement=NUITS, codeCommuneEtablissement=BEAUNE
        ),  # second address only
    ]
    path = write(tmp_path / "StockEtablissement.csv", rows)
    wanted = ListingFilter(
        communes=frozenset({NUITS, GEVREY}), naf_prefixes=("16", "17.21"), min_staff_band="11"
    )
    report = run(engine, path, tmp_path, wanted)
    assert report.kind == ListingKind.SIRENE
    assert (report.created, report.rejected, report.rows_read) == (2, 1, 9)
    assert report.rejections[0].line == 9 and "StockUniteLegale" in report.rejections[0].reason
    found = imported(engine)
    first, carton = found[rows[0]["siret"]], found[rows[6]["siret"]]
    assert (first.name, first.address, first.postcode, first.source) == (
        "ENTREPRISE 1",
        "3 rue DES FRERES",
        "21700",
        Source.SIRENE,
    )
    assert (carton.name, carton.naf_code, carton.commune_code) == (
        "CARTONNAGES DU MEIX",
        "17.21A",
        GEVREY,
    )
    # Closed sites on request.
    report = run(
        engine, path, tmp_path, ListingFilter(communes=frozenset({NUITS}), include_closed=True)
    )
    assert rows[2]["siret"] in imported(engine)


def test_a_quoted_newline_in_a_kept_row_and_the_lines_after_it(
    engine: sa.Engine, tmp_path: Path
) -> None:
    rows = [row(1, complementAdresseEtablissement="BATIMENT B\nZA DES CRAIS"), row(2, codeCommuneEtablissement=BEAUNE),
            row(3, denominationUsuelleEtablissement="")]  # fmt: skip
    path = write(tmp_path / "multi.csv", rows)
    report = run(engine, path, tmp_path, ListingFilter(communes=frozenset({NUITS})))
    assert report.created == 1
    assert imported(engine)[rows[0]["siret"]].address == "BATIMENT B ZA DES CRAIS, 3 rue DES FRERES"
    # The header is line 1 and the first row spans lines 2-3: the rejected row is on line 5.
    assert [r.line for r in report.rejections] == [5]


def test_a_stray_quote_falls_back_to_reading_line_by_line(
    engine: sa.Engine, tmp_path: Path
) -> None:
    path = write(tmp_path / "stray.csv", [row(n) for n in range(1, 6)])
    text = path.read_text().splitlines()
    text[2] = text[2].replace("ENTREPRISE 2", 'ENTREPRISE 2 5" POUCES')  # an unbalanced quote
    path.write_text("\n".join(text) + "\n")
    report = run(engine, path, tmp_path, ListingFilter(communes=frozenset({NUITS})))
    assert report.created == 5 and report.rejected == 0
    assert imported(engine)[row(2)["siret"]].name == 'ENTREPRISE 2 5" POUCES'


def test_the_fast_scan_finds_exactly_what_a_plain_reading_finds(
    engine: sa.Engine, tmp_path: Path
) -> None:
    path = tmp_path / "stock.csv"
    write_sirene_file(path, rows=20_000, keep_communes=(NUITS, GEVREY), keep_ratio=0.05, seed=7)
    expected = set()
    not_diffusible = 0
    with path.open(encoding="utf-8", newline="") as handle:
        for record in csv.DictReader(handle):
            named = record["denominationUsuelleEtablissement"] or record["enseigne1Etablissement"] or \
                record["enseigne2Etablissement"] or record["enseigne3Etablissement"]  # fmt: skip
            if (
                record["codeCommuneEtablissement"] in (NUITS, GEVREY)
                and record["etatAdministratifEtablissement"] == "A"
            ):
                if record["statutDiffusionEtablissement"] == "P":
                    not_diffusible += 1  # left out whether named or not
                elif named.strip():
                    expected.add(record["siret"])
    report = run(engine, path, tmp_path, ListingFilter(communes=frozenset({NUITS, GEVREY})))
    assert len(expected) > 500 and not_diffusible > 10
    assert set(imported(engine)) == expected and report.created == len(expected)
    assert report.not_diffusible == not_diffusible


def test_records_spanning_lines_are_rebuilt_without_falling_back(
    engine: sa.Engine, tmp_path: Path, caplog
) -> None:  # type: ignore[no-untyped-def]
    rows = [
        row(1, complementAdresseEtablissement="BAT B\nZA"),  # newline before the commune code
        row(
            2, enseigne1Etablissement="LE\nCOMPTOIR", denominationUsuelleEtablissement=""
        ),  # after it
        row(3),
    ]
    path = write(tmp_path / "spans.csv", rows)
    with caplog.at_level("WARNING"):
        report = run(engine, path, tmp_path, ListingFilter(communes=frozenset({NUITS})))
    assert report.created == 3 and report.rejected == 0
    assert not [r for r in caplog.records if "trying again" in r.getMessage()]  # no second scan
    found = imported(engine)
    assert found[rows[0]["siret"]].address == "BAT B ZA, 3 rue DES FRERES"
    assert found[rows[1]["siret"]].name == "LE COMPTOIR"
