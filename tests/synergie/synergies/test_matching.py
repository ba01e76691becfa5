"""Matching on a hand-made territory around Nuits-Saint-Georges: the pairs a person would make."""

from __future__ import annotations

import pytest

from synergie.synergies.codes import parse_waste_code
from synergie.synergies.matching import (
    Candidate,
    Direction,
    Flow,
    Kind,
    MatchSettings,
    Site,
    candidates,
    great_circle_km,
    poolings,
    substitutions,
)

IN, OUT = Direction.INCOMING, Direction.OUTGOING

SITES = [
    Site("cartonnerie", "Cartonnerie de la Côte", 47.137, 4.949),  # Nuits-Saint-Georges
    Site("emballeur", "Emballages Beaunois", 47.025, 4.838),  # Beaune, ~15 km
    Site("menuiserie", "Menuiserie Vergy", 47.170, 4.880),
    Site("haras", "Centre équestre de Gilly", 47.171, 4.988),
    Site("garage", "Garage des Hautes-Côtes", 47.120, 4.900),
    Site("regenerateur", "Huiles Régénérées de Bourgogne", 47.300, 5.040),  # ~20 km
    Site("chaufferie", "Chaufferie collective", 47.150, 4.960),
    Site("lyon", "Carton Lyonnais", 45.760, 4.840),  # ~150 km
    Site("imprimerie", "Imprimerie Nuitonne", 47.140, 4.955),
    Site("caviste", "Cave des Ducs", 47.135, 4.945),
    Site("tonnellerie", "Tonnellerie Morey", 47.195, 4.960),
    Site("fromagerie", "Fromagerie de Cîteaux", 47.125, 5.090),
    Site("paletterie", "Palettes Services", 47.080, 4.900),
    Site("scierie", "Scierie d'Arcenant", 47.130, 4.850),
    Site("plasturgie", "Plasturgie Seurre", 47.000, 5.150),
    Site("laiterie", "Laiterie de Chaux", 47.110, 4.920),
]


def flow(id: str, site: str, direction: Direction, code: str | None = None, **kw: object) -> Flow:
    return Flow(id, site, direction, code=parse_waste_code(code) if code else None, **kw)  # type: ignore[arg-type]


FLOWS = [
    # Cardboard scraps given at Nuits, wanted as packing material at Beaune and in Lyon.
    flow(
        "carton-out",
        "cartonnerie",
        OUT,
        "15 01 01",
        category="papier-carton",
        words="chutes de carton",
        tonnes_per_month=2.0,
        outlet="Recyclage Dijon",
    ),
    flow(
        "carton-in",
        "emballeur",
        IN,
        "15 01 01",
        category="papier-carton",
        words="carton de calage",
        tonnes_per_month=1.5,
    ),
    flow(
        "carton-lyon",
        "lyon",
        IN,
        "15 01 01",
        category="papier-carton",
        words="chutes de carton",
        tonnes_per_month=2.0,
    ),
    # Sawdust for horse bedding.
    flow(
        "sciure-out",
        "menuiserie",
        OUT,
        "03 01 05",
        category="bois",
        words="sciure copeaux",
        tonnes_per_month=4.0,
        outlet="Chaufferie bois",
    ),
    flow(
        "sciure-in",
        "haras",
        IN,
        "03 01 05",
        category="bois",
        words="litière sciure",
        tonnes_per_month=3.0,
    ),
    # Waste oil (hazardous): only the regenerator declared it may take it.
    flow(
        "huile-out",
        "garage",
        OUT,
        "13 02 05*",
        category="huiles",
        words="huile moteur usagée",
        tonnes_per_month=0.2,
        outlet="Collecteur agréé",
    ),
    flow(
        "huile-regen",
        "regenerateur",
        IN,
        "13 02 05*",
        category="huiles",
        words="huiles usagées",
        tonnes_per_month=5.0,
        accepts_hazardous=True,
    ),
    flow(
        "huile-chauffe",
        "chaufferie",
        IN,
        "13 02 05*",
        category="huiles",
        words="huile combustible",
        tonnes_per_month=1.0,
    ),
    # Shredded paper for the dairy's packing (same sub-chapter, not the same entry) and the cave's.
    flow(
        "papier-out",
        "imprimerie",
        OUT,
        "20 01 01",
        category="papier-carton",
        words="papier broyé",
        tonnes_per_month=0.8,
        outlet="Déchèterie",
    ),
    flow(
        "papier-in",
        "caviste",
        IN,
        "20 01 01",
        category="papier-carton",
        words="papier de calage",
        tonnes_per_month=0.5,
    ),
    # Plastic packaging to landfill from three neighbours: one collection instead of three.
    flow(
        "film-carton",
        "cartonnerie",
        OUT,
        "15 01 02",
        category="plastique",
        words="film étirable",
        tonnes_per_month=0.6,
        outlet="Enfouissement",
    ),
    flow(
        "film-cave",
        "caviste",
        OUT,
        "15 01 02",
        category="plastique",
        words="films palettes",
        tonnes_per_month=0.3,
        outlet="enfouissement",
    ),
    flow(
        "film-fromage",
        "fromagerie",
        OUT,
        "15 01 02",
        category="plastique",
        words="emballages plastiques",
        tonnes_per_month=0.4,
        outlet="Enfouissement",
    ),
    flow(
        "film-lyon",
        "lyon",
        OUT,
        "15 01 02",
        category="plastique",
        words="film",
        tonnes_per_month=1.0,
        outlet="Enfouissement",
    ),
    flow(
        "film-incinere",
        "laiterie",
        OUT,
        "15 01 02",
        category="plastique",
        words="film",
        tonnes_per_month=0.5,
        outlet="Incinération",
    ),
    # Wooden pallets: same category without code on one side.
    flow(
        "palettes-out",
        "tonnellerie",
        OUT,
        None,
        category="bois",
        words="palettes bois cassées",
        tonnes_per_month=1.0,
        outlet="Brûlage",
    ),
    flow(
        "palettes-in",
        "paletterie",
        IN,
        "15 01 03",
        category="bois",
        words="palettes à réparer",
        tonnes_per_month=2.0,
    ),
    # Same words, different material: never a candidate (« palettes bois » wanted by a metal shop).
    flow(
        "palettes-plastique",
        "plasturgie",
        IN,
        "12 01 01",
        category="métaux",
        words="palettes bois",
        tonnes_per_month=1.0,
    ),
    # Offcuts of a sawmill: same sub-chapter 03 01 as the sawdust, another entry.
    flow(
        "chutes-out",
        "scierie",
        OUT,
        "03 01 01",
        category="bois",
        words="écorces",
        tonnes_per_month=3.0,
        outlet="Compostage",
    ),
    # Whey of the dairy has no taker at all.
    flow(
        "lactoserum",
        "laiterie",
        OUT,
        "02 05 01",
        category="organique",
        words="lactosérum",
        tonnes_per_month=10.0,
        outlet="Épandage",
    ),
]
SITE = {s.id: s for s in SITES}


def pairs(found: list[Candidate]) -> dict[tuple[object, ...], Candidate]:
    return {c.flow_ids: c for c in found if c.kind == Kind.SUBSTITUTION}


def test_finds_the_pairs_a_person_would_with_reasons_and_figures() -> None:
    found = pairs(substitutions(SITES, FLOWS))
    carton = found[("carton-out", "carton-in")]
    assert carton.companies == ("Cartonnerie de la Côte", "Emballages Beaunois")
    assert carton.reasons[0] == "même code déchet 15 01 01"
    assert "Cartonnerie de la Côte produit 2 t/mois" in carton.reasons[1]
    assert "absorbe 75 % du gisement" in carton.reasons[1]
    crow = great_circle_km(47.137, 4.949, 47.025, 4.838)
    assert carton.km == pytest.approx(crow * 1.3, abs=0.1)
    assert "km par la route" in carton.reasons[2] and "× 1,3" in carton.reasons[2]
    assert "mots communs : carton" in carton.reasons[3]

    sciure = found[("sciure-out", "sciure-in")]
    assert sciure.reasons[0] == "même code déchet 03 01 05"
    assert "couvre" not in sciure.reasons[1] and "absorbe 75 %" in sciure.reasons[1]

    assert ("papier-out", "papier-in") in found
    pallets = found[("palettes-out", "palettes-in")]
    assert pallets.reasons[0] == "même catégorie de matière « bois »"
    # The sawmill's bark shares only the sub-chapter with the horse bedding: a weaker score.
    bark = found[("chutes-out", "sciure-in")]
    assert bark.reasons[0].startswith("même sous-chapitre 03 01")
    assert bark.score < sciure.score


def test_the_exact_code_ranks_first_for_a_given_flow() -> None:
    ranked = [c for c in substitutions(SITES, FLOWS) if c.flow_ids[0] == "sciure-out"]
    assert ranked[0].flow_ids[1] == "sciure-in"


def test_nothing_hazardous_to_a_site_that_did_not_declare_it() -> None:
    found = substitutions(SITES, FLOWS)
    oil = pairs(found)
    assert ("huile-out", "huile-regen") in oil
    assert any("déchet dangereux" in r for r in oil[("huile-out", "huile-regen")].reasons)
    assert ("huile-out", "huile-chauffe") not in oil
    takers = {f.id: f for f in FLOWS}
    for c in found:
        give, take = takers[c.flow_ids[0]], takers[c.flow_ids[1]]
        if give.code and give.code.hazardous:
            assert take.accepts_hazardous


def test_nothing_beyond_the_cutoff() -> None:
    everything = candidates(SITES, FLOWS)
    assert everything and all(c.km <= 50 for c in everything)
    assert not any("lyon" in c.site_ids for c in everything)
    # Beaune is ~19 km by road from Nuits: a 10 km cutoff drops the cardboard pair.
    near = pairs(substitutions(SITES, FLOWS, MatchSettings(max_km=10)))
    assert ("carton-out", "carton-in") not in near and all(c.km <= 10 for c in near.values())
    # Lyon comes in when the cutoff reaches it, and not before.
    far = pairs(substitutions(SITES, FLOWS, MatchSettings(max_km=250)))
    assert ("carton-out", "carton-lyon") in far


def test_shared_words_alone_never_make_a_candidate() -> None:
    found = substitutions(SITES, FLOWS)
    assert not any("palettes-plastique" in c.flow_ids for c in found)
    assert not any("lactoserum" in c.flow_ids for c in found)


def test_the_road_factor_is_a_setting() -> None:
    one = pairs(substitutions(SITES, FLOWS, MatchSettings(road_factor=1.0)))
    assert one[("carton-out", "carton-in")].km == pytest.approx(
        great_circle_km(47.137, 4.949, 47.025, 4.838), abs=0.1
    )


def test_pooling_groups_neighbours_sending_the_same_waste_to_the_same_outlet() -> None:
    groups = poolings(SITES, FLOWS)
    assert len(groups) == 1
    group = groups[0]
    assert set(group.flow_ids) == {"film-carton", "film-cave", "film-fromage"}
    assert group.reasons[0] == (
        "3 sites envoient le même déchet (15 01 02) vers « Enfouissement » : "
        "une collecte au lieu de 3"
    )
    assert group.reasons[1] == "ensemble 1,3 t/mois"
    assert group.km <= 50
    # Lyon (too far) and the dairy (incineration, another outlet) are not in it.
    assert "lyon" not in group.site_ids and "laiterie" not in group.site_ids


def test_candidates_are_ranked_best_first() -> None:
    found = candidates(SITES, FLOWS)
    assert [c.score for c in found] == sorted((c.score for c in found), reverse=True)
    assert {c.kind for c in found} == {Kind.SUBSTITUTION, Kind.POOLING}


def test_indexing_by_family_or_by_chapter_then_category_finds_the_same(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from synergie.synergies import matching

    found = {}
    for mode in ("family", "chapter-then-category"):

        def passes(f, mode=mode):  # type: ignore[no-untyped-def]
            if mode == "family":
                return [(f.family, False)]
            chapter = matching.np.where(f.chapter >= 0, f.chapter, -1)
            return [(chapter, False), (matching.np.where(f.category >= 0, f.category, -1), True)]

        monkeypatch.setattr(matching, "_passes", passes)
        found[mode] = [(c.flow_ids, c.score, c.km, c.reasons) for c in substitutions(SITES, FLOWS)]
        # Nothing coded: the pass by chapter has no flow at all, the one by category does.
        uncoded = [Flow(f.id, f.site_id, f.direction, None, f.category, f.words, f.tonnes_per_month)
                   for f in FLOWS]  # fmt: skip
        found[mode + " uncoded"] = [c.flow_ids for c in substitutions(SITES, uncoded)]
    assert found["family"] == found["chapter-then-category"] and len(found["family"]) >= 5
    assert found["family uncoded"] == found["chapter-then-category uncoded"]
    assert ("carton-out", "carton-in") in found["family uncoded"]
    # Sequence behaviour of the ranking: length, slices, negative index, iteration agree.
    ranked = candidates(SITES, FLOWS)
    assert ranked[:3] == list(ranked)[:3] and ranked[-1] == list(ranked)[-1]


def test_a_quantity_not_given_in_tonnes_counts_half_and_says_so() -> None:
    sites = SITES[:2]
    flows = [
        flow("sciure-l", "cartonnerie", OUT, "03 01 05", tonnes_per_month=None),
        flow("sciure-t", "emballeur", IN, "03 01 05", tonnes_per_month=4.0),
    ]
    (found,) = substitutions(sites, flows)
    assert (
        found.reasons[1] == "quantités à comparer à la main (pas données en tonnes des deux côtés)"
    )
    distance = 1 - found.km / 50
    assert found.score == pytest.approx(100 * (0.5 + 0.25 * 0.5 + 0.25 * distance), abs=0.11)
