"""The listing import: real-life files, validation, deduplication, filters, nothing half-written."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from models import Company, Contact, Source, Stage, StageChange
from models.companies import move_company
from synergie.listing.loader import import_listing
from synergie.listing.reading import ImportReport, ListingFileError, ListingFilter, ListingKind
from synergie.listing.rows import clean_phone, clean_siret, name_key
from tests.factories import NOW, luhn_siret, write_csv

S1, S2, S3, S4 = (luhn_siret(n) for n in (101, 102, 103, 104))
LA_POSTE = "35600000000048"  # La Poste's sites: SIREN 356000000, Luhn does not hold

SYNERGIE_CSV = f"""siret;raison_sociale;code_naf;tranche_effectifs;adresse;code_postal;commune;code_commune;latitude;longitude;contact_nom;contact_fonction;courriel;telephone
{S1};Cartonnages de la Vouge;17.21A;11;3 rue des Frères;21700;Nuits-Saint-Georges;21464;47,13800;4.95000;Claire Martin;Gérante;c.martin@example.org;06 39 98 10 01
{S2};Menuiserie Père & Fils;1623Z;03;;21220;Gevrey-Chambertin;21295;;;;;;06 39 98 10 02
;Association Les Ateliers;94.99Z;01;;21700;Nuits-Saint-Georges;21464;;;;;accueil.ateliers@example.com;
"""


def run(engine: sa.Engine, path: Path, tmp_path: Path, **kwargs: object) -> ImportReport:
    listing_filter = kwargs.pop("listing_filter", ListingFilter())
    return import_listing(
        engine=engine, path=path, listing_filter=listing_filter, rejects_dir=tmp_path / "reports",  # type: ignore[arg-type]
        now=NOW, **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


def companies(engine: sa.Engine) -> dict[str, Company]:
    with Session(engine) as session:
        return {c.name: c for c in session.exec(select(Company))}


def contacts(engine: sa.Engine) -> list[Contact]:
    with Session(engine) as session:
        return list(session.exec(select(Contact).order_by(Contact.identity)))


def test_synergie_csv_is_imported_with_clean_values(engine: sa.Engine, tmp_path: Path) -> None:
    report = run(engine, write_csv(tmp_path / "liste.csv", SYNERGIE_CSV), tmp_path)
    assert (report.kind, report.rows_read, report.created, report.rejected) == (
        ListingKind.SYNERGIE,
        3,
        3,
        0,
    )
    found = companies(engine)
    carton = found["Cartonnages de la Vouge"]
    assert (carton.siret, carton.naf_code, carton.staff_band, carton.commune_code) == (
        S1,
        "17.21A",
        "11",
        "21464",
    )
    assert (carton.latitude, carton.longitude, carton.source, carton.stage) == (
        47.138,
        4.95,
        Source.LISTING,
        Stage.LISTED,
    )
    assert found["Menuiserie Père & Fils"].naf_code == "16.23Z"
    assert found["Association Les Ateliers"].siret is None
    assert [(c.email, c.phone, c.name, c.role) for c in contacts(engine)] == [
        ("accueil.ateliers@example.com", None, None, None),
        ("c.martin@example.org", "+33639981001", "Claire Martin", "Gérante"),
        (None, "+33639981002", None, None),
    ]


def test_reimporting_the_same_file_creates_nothing(engine: sa.Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "liste.csv", SYNERGIE_CSV)
    run(engine, path, tmp_path)
    again = run(engine, path, tmp_path)
    assert (again.created, again.updated, again.contacts_created) == (0, 3, 0)
    assert len(companies(engine)) == 3 and len(contacts(engine)) == 3


def test_update_in_place_keeps_stage_history_and_known_values(
    engine: sa.Engine, tmp_path: Path
) -> None:
    run(engine, write_csv(tmp_path / "v1.csv", SYNERGIE_CSV), tmp_path)
    with Session(engine) as session:
        carton = session.exec(select(Company).where(Company.siret == S1)).one()
        move_company(
            session=session,
            company=carton,
            target=Stage.CONTACTED,
            why="courrier",
            actor="cli",
            now=NOW,
        )
        session.commit()
    renamed = f"siret;raison_sociale;adresse;code_postal\n{S1};Cartonnages de la Vouge SAS;5 rue Neuve;21700\n"
    report = run(engine, write_csv(tmp_path / "v2.csv", renamed), tmp_path)
    assert (report.created, report.updated) == (0, 1)
    carton = companies(engine)["Cartonnages de la Vouge SAS"]
    assert carton.stage == Stage.CONTACTED  # stage kept
    assert carton.address == "5 rue Neuve"  # new value taken
    assert carton.naf_code == "17.21A" and carton.latitude == 47.138  # empty cells erase nothing
    with Session(engine) as session:
        assert len(session.exec(select(StageChange)).all()) == 1


def test_without_siret_the_same_name_and_postcode_is_the_same_company(
    engine: sa.Engine, tmp_path: Path
) -> None:
    first = "raison_sociale;code_postal;courriel\nSARL Boulangerie Dupré;21700;a@example.org\n"
    second = "Nom;CP;Mail\nboulangerie  DUPRE;21700;b@example.org\nBoulangerie Dupré;21220;\n"
    run(engine, write_csv(tmp_path / "1.csv", first), tmp_path)
    report = run(engine, write_csv(tmp_path / "2.csv", second), tmp_path)
    assert (report.created, report.updated) == (1, 1)
    assert (
        name_key("SARL Boulangerie Dupré") == name_key("boulangerie  DUPRE") == "boulangerie dupre"
    )
    with Session(engine) as session:
        rows = session.exec(
            select(Company.postcode, sa.func.count()).group_by(Company.postcode)
        ).all()  # type: ignore[call-overload]
    assert sorted(rows) == [("21220", 1), ("21700", 1)]
    assert {c.email for c in contacts(engine)} == {"a@example.org", "b@example.org"}


def test_excel_export_cp1252_with_french_headers_crlf_and_blank_lines(
    engine: sa.Engine, tmp_path: Path
) -> None:
    text = (
        "Raison sociale;SIRET;Code postal;Commune;Téléphone;Courriel;Fonction;Contact\r\n"
        "\r\n"
        f"Tonnellerie l'Échézeaux;{S1};21640;Flagey-Échézeaux;06 39 98 11 11;É.Rémy@Example.org;Directrice;Élise Rémy\r\n"
        ";;;;;;;\r\n"
        f"Garage Öhl;{S2};1000;Bourg;;;;\r\n"
    )
    path = write_csv(tmp_path / "export.csv", text, encoding="cp1252")
    report = run(engine, path, tmp_path)
    assert report.encoding == "cp1252" and report.delimiter == ";"
    assert report.created == 2
    assert report.rejected == 1 and report.rejections[0].line == 4  # the row of empty cells
    found = companies(engine)
    assert found["Tonnellerie l'Échézeaux"].commune == "Flagey-Échézeaux"
    assert found["Garage Öhl"].postcode == "01000"  # Excel's lost leading zero restored
    mail = next(c for c in contacts(engine) if c.email)
    assert (mail.email, mail.name, mail.role) == ("é.rémy@example.org", "Élise Rémy", "Directrice")


def test_utf8_bom_comma_separated_quoted_fields_with_newlines(
    engine: sa.Engine, tmp_path: Path
) -> None:
    text = (
        "\ufeffSIRET,Entreprise,Adresse,Code postal\n"
        f'{S1},"Imprimerie ""La Page""","ZA des Crais\nBâtiment B",21700\n'
        f'{S2},"Transports, Logistique & Co",,21220\n'
    )
    report = run(engine, write_csv(tmp_path / "bom.csv", text), tmp_path)
    assert (report.encoding, report.delimiter, report.created, report.rejected) == (
        "utf-8-sig",
        ",",
        2,
        0,
    )
    found = companies(engine)
    assert found['Imprimerie "La Page"'].address == "ZA des Crais Bâtiment B"
    assert "Transports, Logistique & Co" in found


def test_each_bad_row_is_rejected_with_its_line_and_a_french_reason(
    engine: sa.Engine, tmp_path: Path
) -> None:
    text = (
        "siret;raison_sociale;code_postal;courriel;telephone;code_naf;tranche_effectifs\n"
        f"{S1};Bonne Entreprise;21700;;;;\n"  # 2
        "12345678901234;Mauvais SIRET;21700;;;;\n"  # 3
        f"{S2};Mauvais courriel;21700;pas-une-adresse;;;\n"  # 4
        f"{S3};Mauvais téléphone;21700;;12;;\n"  # 5
        f"{S4};Mauvais NAF;21700;;;ABC;\n"  # 6
        f"{luhn_siret(105)};Mauvaise tranche;21700;;;;99\n"  # 7
        ";Sans identifiant;;;;;\n"  # 8
        f"{luhn_siret(106)};;21700;;;;\n"  # 9
        "3,56E+13;Excel scientifique;21700;;;;\n"  # 10
        f"{LA_POSTE};La Poste Nuits;21700;;;;\n"  # 11
    )
    report = run(engine, write_csv(tmp_path / "sale.csv", text), tmp_path)
    assert (report.created, report.rejected) == (2, 8)
    reasons = {r.line: r.reason for r in report.rejections}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert "SIRET invalide" in reasons[3]
    assert "adresse e-mail invalide" in reasons[4]
    assert "téléphone" in reasons[5]
    assert "code NAF invalide" in reasons[6]
    assert "tranche d'effectifs" in reasons[7]
    assert "ni SIRET ni code postal" in reasons[8]
    assert "raison sociale manquante" in reasons[9]
    assert "Excel" in reasons[10]
    assert set(companies(engine)) == {"Bonne Entreprise", "La Poste Nuits"}
    assert report.rejects_path is not None
    with open(report.rejects_path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    assert rows[0] == ["ligne", "motif", "contenu"]
    # Rows 2 and 11 are imported, but 21700 alone covers 22 communes: staff must say which.
    assert [int(r[0]) for r in rows[1:]] == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert rows[2][2] == "12345678901234;Mauvais SIRET;21700;;;;"
    assert rows[-1][1].startswith("importée sans code commune : le code postal 21700 couvre")
    assert report.unplaced == 2


def test_dry_run_writes_nothing_but_counts(engine: sa.Engine, tmp_path: Path) -> None:
    report = run(engine, write_csv(tmp_path / "liste.csv", SYNERGIE_CSV), tmp_path, dry_run=True)
    assert (report.created, report.dry_run) == (3, True)
    assert companies(engine) == {} and contacts(engine) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "introuvable"),
        (b"", "vide"),
        (b"\n\n  \n", "vide"),
        (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00", "classeur Excel mais ne s.ouvre pas"),
        (b"\xff\xfes\x00i\x00r\x00e\x00t\x00", "ni un fichier CSV ni un classeur"),
        (b"juste une colonne\nvaleur\n", "qu'une colonne"),
        (b"foo;bar\n1;2\n", "aucune colonne"),
        (b"siret;ville\n1;2\n", "raison_sociale"),
    ],
)
def test_an_unreadable_file_is_one_clear_error_and_changes_nothing(
    engine: sa.Engine, tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "fichier.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ListingFileError, match=message):
        run(engine, path, tmp_path)
    assert companies(engine) == {}
    assert not (tmp_path / "reports").exists()


def test_a_database_error_mid_import_leaves_nothing_behind(
    engine: sa.Engine, tmp_path: Path
) -> None:
    rows = "".join(f"{luhn_siret(1000 + n)};Entreprise {n};21700\n" for n in range(1200))
    path = write_csv(tmp_path / "gros.csv", "siret;raison_sociale;code_postal\n" + rows)
    calls = {"n": 0}

    def fail_late(done: int, total: int) -> None:
        calls["n"] += 1

    from synergie.listing import loader as listing

    original = listing.ListingLoader.load

    def load_then_fail(self, batch):  # type: ignore[no-untyped-def]
        original(self, batch)
        if self.created >= 1000:
            raise RuntimeError("disque plein")

    listing.ListingLoader.load = load_then_fail  # type: ignore[method-assign]
    try:
        with pytest.raises(RuntimeError, match="disque plein"):
            run(engine, path, tmp_path, on_progress=fail_late)
    finally:
        listing.ListingLoader.load = original  # type: ignore[method-assign]
    assert companies(engine) == {}


def test_a_stray_quote_does_not_swallow_the_rest_of_the_file(
    engine: sa.Engine, tmp_path: Path
) -> None:
    rows = [f'{luhn_siret(200)};Garage 5" pouces;21700'] + [
        f"{luhn_siret(201 + n)};Entreprise {n};21700" for n in range(30)
    ]
    path = write_csv(
        tmp_path / "quote.csv", "siret;raison_sociale;code_postal\n" + "\n".join(rows) + "\n"
    )
    report = run(engine, path, tmp_path)
    assert (report.created, report.rejected) == (31, 0)
    assert 'Garage 5" pouces' in companies(engine)


def test_filters_apply_to_our_own_csv(engine: sa.Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "liste.csv", SYNERGIE_CSV)
    report = run(
        engine, path, tmp_path, listing_filter=ListingFilter(communes=frozenset({"21295"}))
    )
    assert (report.created, report.filtered_out) == (1, 2)
    assert set(companies(engine)) == {"Menuiserie Père & Fils"}


def test_progress_is_reported_up_to_the_file_size(engine: sa.Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "liste.csv", SYNERGIE_CSV)
    seen: list[tuple[int, int]] = []
    run(engine, path, tmp_path, on_progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (path.stat().st_size, path.stat().st_size)


def test_validators_use_the_libraries_rules() -> None:
    assert clean_siret(LA_POSTE) == LA_POSTE
    assert clean_siret(" 356 000 000 00048 ") == LA_POSTE
    assert clean_siret("") is None
    assert clean_phone("+33 6 39 98 00 01") == "+33639980001"
    assert clean_phone("03 80 61 00 00") == "+33380610000"
    with pytest.raises(ValueError):
        clean_phone("06 00 00")


def test_rejects_csv_never_holds_a_formula(engine: sa.Engine, tmp_path: Path) -> None:
    # Issue 9, item 4: each of these lines used to be written back verbatim, and Excel ran it.
    leaders = [
        '=HYPERLINK("https://exemple.invalid/fiche","Voir la fiche");Entreprise;21700',
        "+33612345678;Entreprise plus;21700",
        "-2+3;Entreprise moins;21700",
        "@SUM(1+1);Entreprise arobase;21700",
        "\t=1+1;Entreprise tabulation;21700",
        "\r=1+1;Entreprise retour;21700",
    ]
    path = write_csv(
        tmp_path / "formules.csv", "siret;raison_sociale;code_postal\n" + "\n".join(leaders) + "\n"
    )
    report = run(engine, path, tmp_path)
    assert report.rejected == len(leaders)
    assert report.rejects_path is not None
    with open(report.rejects_path, encoding="utf-8-sig", newline="") as handle:
        cells = [cell for row in csv.reader(handle, delimiter=";") for cell in row]
    contents = cells[5::3]  # after the header: line, reason, content
    assert contents == ["'" + line for line in leaders]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
