"""The demo's fictional flows, as plain data: what the sample territory's companies give and take."""

from __future__ import annotations

from collections.abc import Sequence

from models.tables import Company
from synergie.synergies.codes import parse_waste_code
from synergie.synergies.matching import Direction, Flow, Site

IN, OUT = Direction.INCOMING, Direction.OUTGOING

# (start of the company's name, direction, code, category, words, t/month, outlet, takes hazardous)
DEMO_FLOWS: tuple[tuple[str, Direction, str, str, str, float, str, bool], ...] = (
    (
        "Cartonnages de la Vouge",
        OUT,
        "15 01 01",
        "papier-carton",
        "chutes de carton",
        2.0,
        "Recyclage hors canton",
        False,
    ),
    (
        "Distillerie du Cassis Noir",
        IN,
        "15 01 01",
        "papier-carton",
        "carton de calage",
        1.5,
        "",
        False,
    ),
    (
        "Chocolaterie Gourmandise",
        IN,
        "15 01 01",
        "papier-carton",
        "cartons d'expédition",
        0.5,
        "",
        False,
    ),
    (
        "Imprimerie Nuitonne",
        OUT,
        "20 01 01",
        "papier-carton",
        "papier broyé",
        0.8,
        "Déchèterie",
        False,
    ),
    (
        "Ressourcerie La Seconde",
        IN,
        "20 01 01",
        "papier-carton",
        "papier de calage",
        0.3,
        "",
        False,
    ),
    (
        "Tonnellerie du Merrain",
        OUT,
        "03 01 05",
        "bois",
        "copeaux sciure",
        3.0,
        "Chaufferie bois",
        False,
    ),
    (
        "Palettes & Emballages Bois",
        OUT,
        "15 01 03",
        "bois",
        "palettes cassées",
        1.0,
        "Brûlage",
        False,
    ),
    ('Atelier "Le Copeau Vif"', IN, "03 01 05", "bois", "copeaux", 1.0, "", False),
    (
        "Plasturgie Nuitonne",
        OUT,
        "15 01 02",
        "plastique",
        "film étirable",
        0.6,
        "Enfouissement",
        False,
    ),
    (
        "Entrepôts Logistiques",
        OUT,
        "15 01 02",
        "plastique",
        "films palettes",
        0.9,
        "Enfouissement",
        False,
    ),
    (
        "Négoce des Vins",
        OUT,
        "15 01 02",
        "plastique",
        "emballages plastiques",
        0.3,
        "Enfouissement",
        False,
    ),
    (
        "Garage du Champ",
        OUT,
        "13 02 05*",
        "huiles",
        "huile moteur usagée",
        0.2,
        "Collecteur agréé",
        False,
    ),
    ("Mécanique de Précision", IN, "13 02 05*", "huiles", "huile de coupe", 0.1, "", False),
)


def demo_territory(companies: Sequence[Company]) -> tuple[list[Site], list[Flow]]:
    """Sites and flows for the companies of the sample listing that DEMO_FLOWS names."""
    sites: dict[int, Site] = {}
    flows: list[Flow] = []
    for number, (name, direction, code, category, words, tonnes, outlet, hazardous) in enumerate(
        DEMO_FLOWS, start=1
    ):
        company = next((c for c in companies if c.name.startswith(name)), None)
        if (
            company is None
            or company.id is None
            or company.latitude is None
            or company.longitude is None
        ):
            continue
        sites[company.id] = Site(company.id, company.name, company.latitude, company.longitude)
        flows.append(
            Flow(
                number, company.id, direction, parse_waste_code(code), category, words, tonnes,
                outlet or None, hazardous,
            )
        )  # fmt: skip
    return list(sites.values()), flows
