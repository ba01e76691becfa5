"""Names and places: communes from postcode + name, SIRENE coordinates, diffusion status, legal units."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from bench.sirene_gen import LEGAL_UNIT_COLUMNS, SIRENE_COLUMNS, lambert93
from models import Company
from synergie.listing.communes import PlaceNotFound, load_communes, place_key
from synergie.listing.loader import import_listing
from synergie.listing.reading import ListingFileError, ListingFilter, scan_legal_units
from tests.factories import NOW, luhn_siret

NUITS, GEVREY = "21464", "21295"


def companies(engine: sa.Engine) -> dict[str, Company]:
    with Session(engine) as session:
        return {c.name: c for c in session.exec(select(Company))}


def run(engine: sa.Engine, path: Path, tmp_path: Path, **kwargs):  # type: ignore[no-untyped-def]
    kwargs.setdefault("listing_filter", ListingFilter())
    return import_listing(engine=engine, path=path, rejects_dir=tmp_path / "reports", now=NOW,
                          **kwargs)  # fmt: skip


# ── the communes table ─────────────────────────────────────────────────────────────────


def test_names_compare_without_accents_case_hyphens_or_saint() -> None:
    assert place_key("NUITS ST GEORGES CEDEX 1") == place_key("Nuits-Saint-Georges")
    assert place_key("Chambœuf") == place_key("CHAMBOEUF")
    assert place_key("L'Abergement-Clémenciat") == place_key("L ABERGEMENT CLEMENCIAT")
    assert place_key("Sainte-Marie") == place_key("STE MARIE")


@pytest.mark.parametrize(
    ("postcode", "name", "code"),
    [
        ("21700", "Nuits St Georges", NUITS),
        ("21701", "NUITS SAINT GEORGES CEDEX", NUITS),  # a CEDEX: found by name in Côte-d'Or
        ("21220", "Gevrey-Chambertin", GEVREY),
        ("75015", "PARIS 15", "75115"),  # SIRENE codes Paris by arrondissement
        ("75015", "Paris", "75115"),
        ("49150", "Baugé", "49018"),  # a commune déléguée: its commune nouvelle
        ("97400", "Saint-Denis", "97411"),  # the whole of France, overseas too
        ("20000", "Ajaccio", "2A004"),
        (None, "Gevrey-Chambertin", GEVREY),
    ],
)
def test_a_postcode_and_name_resolve_to_one_commune(
    postcode: str | None, name: str | None, code: str
) -> None:
    commune = load_communes().resolve(postcode, name)
    assert commune.code == code
    assert commune.latitude is not None and commune.longitude is not None


def test_the_whole_of_france_is_there() -> None:
    communes = load_communes()
    assert (
        len([c for c in communes.by_code.values() if not c.code.startswith(("751", "6938", "132"))])
        > 34_000
    )
    nuits = communes.get(NUITS)
    assert nuits is not None and nuits.postcodes == ("21700",)
    assert abs(nuits.latitude - 47.14) < 0.05 and abs(nuits.longitude - 4.95) < 0.05  # type: ignore[operator]


def test_ambiguous_and_unknown_pairs_say_why_in_french() -> None:
    communes = load_communes()
    with pytest.raises(
        PlaceNotFound, match="le code postal 21700 couvre plusieurs communes"
    ) as caught:
        communes.resolve("21700", None)
    assert NUITS in {c.code for c in caught.value.candidates}
    with pytest.raises(PlaceNotFound, match="« Gevrey » introuvable au code postal 21700"):
        communes.resolve("21700", "Gevrey")
    with pytest.raises(PlaceNotFound, match="« Saint-Denis » ambiguë") as caught:
        communes.resolve(None, "Saint-Denis")
    assert {"93066", "97411"} <= {c.code for c in caught.value.candidates}
    with pytest.raises(PlaceNotFound, match="ni code commune, ni code postal, ni commune"):
        communes.resolve(None, None)


def test_find_takes_codes_postcodes_names_and_pairs() -> None:
    communes = load_communes()
    assert [c.code for c in communes.find(NUITS)] == [NUITS]
    assert [c.code for c in communes.find("nuits saint georges")] == [NUITS]
    assert [c.code for c in communes.find("21700 Nuits-Saint-Georges")] == [NUITS]
    assert [c.code for c in communes.find("97400")] == ["97411"]  # Saint-Denis's postcode
    # 21640 is a commune's code and also Vougeot's postcode: both are offered.
    assert {"21640", "21716"} <= {c.code for c in communes.find("21640")}
    assert len(communes.find("21220")) > 10
    assert communes.find("999999") == [] and communes.find("Nulle-Part-sur-Rien") == []


# ── a staff listing with postcode and commune name only ────────────────────────────────

LISTING = (
    "siret;raison_sociale;code_postal;commune;code_commune;latitude;longitude\n"
    f"{luhn_siret(401)};Scierie du Meuzin;21700;Nuits St Georges;;;\n"  # 2: resolved
    f"{luhn_siret(402)};Cave de Gevrey;21220;GEVREY CHAMBERTIN;;47.2271;4.9680\n"  # 3: own position
    f"{luhn_siret(403)};Garage inconnu;21700;Gevrey;;;\n"  # 4: not at that postcode
    f"{luhn_siret(404)};Ferme ambiguë;21700;;;;\n"  # 5: 22 communes
    f"{luhn_siret(405)};Menuiserie codée;;;21186;;\n"  # 6: the code alone
)


def test_a_listing_without_insee_codes_is_placed_at_import(
    engine: sa.Engine, tmp_path: Path
) -> None:
    path = tmp_path / "liste.csv"
    path.write_text(LISTING, encoding="utf-8")
    report = run(engine, path, tmp_path)
    assert (report.created, report.rejected, report.unplaced) == (5, 0, 2)
    found = companies(engine)
    scierie = found["Scierie du Meuzin"]
    assert (scierie.commune_code, scierie.location_precision) == (NUITS, "commune")
    assert abs(scierie.latitude - 47.146) < 0.01  # type: ignore[operator]
    cave = found["Cave de Gevrey"]
    assert (cave.commune_code, cave.latitude, cave.location_precision) == (GEVREY, 47.2271, "site")
    assert found["Menuiserie codée"].location_precision == "commune"
    assert (
        found["Garage inconnu"].commune_code is None and found["Ferme ambiguë"].commune_code is None
    )
    reasons = {r.line: r.reason for r in report.unplaced_rows}
    assert "« Gevrey » introuvable au code postal 21700" in reasons[4]
    assert "couvre plusieurs communes" in reasons[5] and "Agencourt (21001, 21700)" in reasons[5]
    with open(report.rejects_path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    assert [r[0] for r in rows[1:]] == ["4", "5"]
    assert rows[1][1].startswith("importée sans code commune")


def test_with_a_commune_filter_an_unplaced_row_is_rejected(
    engine: sa.Engine, tmp_path: Path
) -> None:
    path = tmp_path / "liste.csv"
    path.write_text(LISTING, encoding="utf-8")
    report = run(engine, path, tmp_path, listing_filter=ListingFilter(communes=frozenset({NUITS})))
    assert set(companies(engine)) == {"Scierie du Meuzin"}
    assert report.rejected == 2 and "impossible de savoir" in report.rejections[0].reason


def test_a_commune_centroid_never_replaces_the_sites_own_position(
    engine: sa.Engine, tmp_path: Path
) -> None:
    path = tmp_path / "liste.csv"
    path.write_text(LISTING, encoding="utf-8")
    run(engine, path, tmp_path)
    again = tmp_path / "sans-coordonnees.csv"
    again.write_text(LISTING.replace("47.2271;4.9680", ";"), encoding="utf-8")
    run(engine, again, tmp_path)
    cave = companies(engine)["Cave de Gevrey"]
    assert (cave.latitude, cave.longitude, cave.location_precision) == (47.2271, 4.968, "site")


# ── SIRENE: diffusion status, coordinates, legal units ─────────────────────────────────


def site(n: int, **values: str) -> dict[str, str]:
    siret = luhn_siret(500 + n)
    x, y = lambert93(47.1380, 4.9510)
    base = dict.fromkeys(SIRENE_COLUMNS, "")
    base.update(
        siren=siret[:9], nic=siret[9:], siret=siret, statutDiffusionEtablissement="O",
        etatAdministratifEtablissement="A", codeCommuneEtablissement=NUITS,
        codePostalEtablissement="21700", libelleCommuneEtablissement="NUITS-SAINT-GEORGES",
        denominationUsuelleEtablissement=f"SITE {n}",
        coordonneeLambertAbscisseEtablissement=f"{x:.1f}", coordonneeLambertOrdonneeEtablissement=f"{y:.1f}",
    )  # fmt: skip
    base.update(values)
    return base


def unit(siren: str, **values: str) -> dict[str, str]:
    base = dict.fromkeys(LEGAL_UNIT_COLUMNS, "")
    base.update(siren=siren, statutDiffusionUniteLegale="O", etatAdministratifUniteLegale="A")
    base.update(values)
    return base


def write(path: Path, columns: tuple[str, ...], rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


NAMELESS = {"denominationUsuelleEtablissement": ""}


def sirene_case(tmp_path: Path) -> tuple[Path, Path, list[dict[str, str]]]:
    sites = [
        site(1),  # named, own coordinates
        site(2, statutDiffusionEtablissement="P", denominationUsuelleEtablissement="[ND]",
             coordonneeLambertAbscisseEtablissement="[ND]", coordonneeLambertOrdonneeEtablissement="[ND]"),
        site(3, **NAMELESS),  # a company: its denomination
        site(4, **NAMELESS),  # a sole trader: first and last names
        site(5, **NAMELESS),  # its legal unit refused prospecting
        site(6, **NAMELESS),  # its legal unit is not in the file
        site(7, coordonneeLambertAbscisseEtablissement="", coordonneeLambertOrdonneeEtablissement=""),
        site(8, codeCommuneEtablissement="21054"),  # Beaune: outside the filter
    ]  # fmt: skip
    units = [
        unit(sites[0]["siren"], denominationUniteLegale="IGNORED, THE SITE HAS A NAME"),
        unit(sites[2]["siren"], denominationUniteLegale="CARTONNAGES DE LA VOUGE"),
        unit(sites[3]["siren"], prenom1UniteLegale="JEAN", prenomUsuelUniteLegale="JEANNOT",
             nomUniteLegale="MARTIN", nomUsageUniteLegale=""),
        unit(sites[4]["siren"], statutDiffusionUniteLegale="P", nomUniteLegale="[ND]"),
        unit(luhn_siret(999)[:9], denominationUniteLegale="NOT IN THE TERRITORY"),
    ]  # fmt: skip
    return (
        write(tmp_path / "StockEtablissement.csv", SIRENE_COLUMNS, sites),
        write(tmp_path / "StockUniteLegale.csv", LEGAL_UNIT_COLUMNS, units),
        sites,
    )


def test_sirene_names_from_legal_units_diffusion_and_coordinates(
    engine: sa.Engine, tmp_path: Path
) -> None:
    sites_path, units_path, sites = sirene_case(tmp_path)
    report = run(engine, sites_path, tmp_path, legal_units=units_path,
                 listing_filter=ListingFilter(communes=frozenset({NUITS})))  # fmt: skip
    found = {c.siret: c for c in companies(engine).values()}
    assert set(found) == {sites[i]["siret"] for i in (0, 2, 3, 6)}
    assert found[sites[2]["siret"]].name == "CARTONNAGES DE LA VOUGE"
    assert found[sites[3]["siret"]].name == "JEANNOT MARTIN"
    assert (report.not_diffusible, report.named_from_legal_units, report.rejected) == (2, 2, 1)
    assert "unité légale" in report.rejections[0].reason and report.rejections[0].line == 7
    assert report.legal_units_read == 5
    first = found[sites[0]["siret"]]
    assert first.location_precision == "site"
    assert abs(first.latitude - 47.1380) < 1e-4 and abs(first.longitude - 4.9510) < 1e-4  # type: ignore[operator]
    assert found[sites[6]["siret"]].location_precision == "commune"


def test_without_legal_units_a_nameless_site_is_rejected_and_p_is_counted(
    engine: sa.Engine, tmp_path: Path
) -> None:
    sites_path, _, _ = sirene_case(tmp_path)
    report = run(
        engine, sites_path, tmp_path, listing_filter=ListingFilter(communes=frozenset({NUITS}))
    )
    assert (report.created, report.not_diffusible, report.rejected) == (2, 1, 4)
    assert "--legal-units" in report.rejections[0].reason


def test_the_legal_units_scan_returns_only_the_sirens_asked(tmp_path: Path) -> None:
    _, units_path, sites = sirene_case(tmp_path)
    wanted = {sites[2]["siren"], sites[4]["siren"], "000000000"}
    units, lines = scan_legal_units(units_path, wanted)
    assert set(units) == {sites[2]["siren"], sites[4]["siren"]} and lines == 5
    assert units[sites[4]["siren"]].diffusion == "P"


def test_legal_units_need_a_sirene_sites_file(engine: sa.Engine, tmp_path: Path) -> None:
    path = tmp_path / "liste.csv"
    path.write_text(LISTING, encoding="utf-8")
    _, units_path, _ = sirene_case(tmp_path)
    with pytest.raises(ListingFileError, match="StockEtablissement"):
        run(engine, path, tmp_path, legal_units=units_path)
    with pytest.raises(ListingFileError, match="unités légales"):
        run(engine, units_path, tmp_path, legal_units=path)


def test_matching_places_a_company_without_coordinates_at_its_communes_centroid() -> None:
    from synergie.synergies.sources import sites_from_companies

    own = Company(id=1, name="A", name_key="a", commune_code=NUITS, latitude=47.2, longitude=4.9)
    by_commune = Company(id=2, name="B", name_key="b", commune_code=GEVREY)
    nowhere = Company(id=3, name="C", name_key="c")
    sites, missing = sites_from_companies([own, by_commune, nowhere])
    assert [(s.id, s.latitude) for s in sites][0] == (1, 47.2)
    gevrey = load_communes().get(GEVREY)
    assert gevrey is not None and (sites[1].latitude, sites[1].longitude) == (
        gevrey.latitude,
        gevrey.longitude,
    )
    assert missing == [nowhere]


def test_a_position_far_from_its_commune_gives_way_to_the_communes_centroid(
    engine: sa.Engine, tmp_path: Path
) -> None:
    path = tmp_path / "liste.csv"
    path.write_text(
        "siret;raison_sociale;code_commune;latitude;longitude\n"
        f"{luhn_siret(451)};Inversée;{NUITS};4.95;47.14\n",  # latitude and longitude swapped
        encoding="utf-8",
    )
    run(engine, path, tmp_path)
    company = companies(engine)["Inversée"]
    assert company.location_precision == "commune" and abs(company.latitude - 47.146) < 0.01  # type: ignore[operator]
