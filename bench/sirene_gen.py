"""Stream a synthetic INSEE SIRENE StockEtablissement CSV, for import benchmarks and tests."""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

# The 54 columns of StockEtablissement_utf8.csv as INSEE publishes it since the NAF 2025 column
# was appended (December 2025), in file order. The address block gained dernierNumeroVoie*,
# identifiantAdresse* and the Lambert coordinates in 2023; older 48-column headers lack them.
SIRENE_COLUMNS: tuple[str, ...] = (
    "siren",
    "nic",
    "siret",
    "statutDiffusionEtablissement",
    "dateCreationEtablissement",
    "trancheEffectifsEtablissement",
    "anneeEffectifsEtablissement",
    "activitePrincipaleRegistreMetiersEtablissement",
    "dateDernierTraitementEtablissement",
    "etablissementSiege",
    "nombrePeriodesEtablissement",
    "complementAdresseEtablissement",
    "numeroVoieEtablissement",
    "indiceRepetitionEtablissement",
    "dernierNumeroVoieEtablissement",
    "indiceRepetitionDernierNumeroVoieEtablissement",
    "typeVoieEtablissement",
    "libelleVoieEtablissement",
    "codePostalEtablissement",
    "libelleCommuneEtablissement",
    "libelleCommuneEtrangerEtablissement",
    "distributionSpecialeEtablissement",
    "codeCommuneEtablissement",
    "codeCedexEtablissement",
    "libelleCedexEtablissement",
    "codePaysEtrangerEtablissement",
    "libellePaysEtrangerEtablissement",
    "identifiantAdresseEtablissement",
    "coordonneeLambertAbscisseEtablissement",
    "coordonneeLambertOrdonneeEtablissement",
    "complementAdresse2Etablissement",
    "numeroVoie2Etablissement",
    "indiceRepetition2Etablissement",
    "typeVoie2Etablissement",
    "libelleVoie2Etablissement",
    "codePostal2Etablissement",
    "libelleCommune2Etablissement",
    "libelleCommuneEtranger2Etablissement",
    "distributionSpeciale2Etablissement",
    "codeCommune2Etablissement",
    "codeCedex2Etablissement",
    "libelleCedex2Etablissement",
    "codePaysEtranger2Etablissement",
    "libellePaysEtranger2Etablissement",
    "dateDebut",
    "etatAdministratifEtablissement",
    "enseigne1Etablissement",
    "enseigne2Etablissement",
    "enseigne3Etablissement",
    "denominationUsuelleEtablissement",
    "activitePrincipaleEtablissement",
    "nomenclatureActivitePrincipaleEtablissement",
    "caractereEmployeurEtablissement",
    "activitePrincipaleNAF25Etablissement",
)

NOT_DIFFUSED = "[ND]"  # what INSEE writes in masked fields of "P" (partial diffusion) rows
CHUNK_ROWS = 20_000

# Real communes of the CC de Gevrey-Chambertin et de Nuits-Saint-Georges (INSEE code -> name,
# postcode, latitude, longitude), the same ones as the bundled sample territory. Other keep
# codes get a placeholder name and a random position.
KNOWN_COMMUNES: dict[str, tuple[str, str, float, float]] = {
    "21464": ("NUITS-SAINT-GEORGES", "21700", 47.13833, 4.95111),
    "21295": ("GEVREY-CHAMBERTIN", "21220", 47.22722, 4.96806),
    "21110": ("BROCHON", "21220", 47.23972, 4.97167),
    "21442": ("MOREY-SAINT-DENIS", "21220", 47.19639, 4.96417),
    "21716": ("VOUGEOT", "21640", 47.17722, 4.96417),
    "21714": ("VOSNE-ROMANEE", "21700", 47.16028, 4.95444),
    "21506": ("PREMEAUX-PRISSEY", "21700", 47.11306, 4.93528),
    "21186": ("COMBLANCHIEN", "21700", 47.10222, 4.92194),
    "21194": ("CORGOLOIN", "21700", 47.08472, 4.91528),
    "21564": ("SAINT-NICOLAS-LES-CITEAUX", "21700", 47.11556, 5.05528),
}

# NAF rév. 2 sub-classes with rough relative weights (services and trades dominate the stock).
NAF_CODES: tuple[tuple[str, int], ...] = (
    ("01.11Z", 12), ("01.21Z", 6), ("01.41Z", 5), ("01.50Z", 4), ("02.20Z", 1), ("08.11Z", 1),
    ("10.13A", 1), ("10.13B", 1), ("10.51C", 1), ("10.71C", 6), ("10.71D", 2), ("10.82Z", 1),
    ("11.01Z", 1), ("11.02B", 2), ("16.10A", 1), ("16.23Z", 1), ("16.24Z", 1), ("17.21A", 1),
    ("18.12Z", 2), ("20.30Z", 1), ("20.59Z", 1), ("22.22Z", 1), ("23.70Z", 1), ("25.11Z", 1),
    ("25.62A", 1), ("25.62B", 2), ("28.93Z", 1), ("33.12Z", 2), ("35.11Z", 6), ("38.11Z", 1),
    ("38.32Z", 1), ("41.10A", 4), ("41.20A", 4), ("43.21A", 8), ("43.22A", 6), ("43.22B", 5),
    ("43.31Z", 4), ("43.32A", 6), ("43.34Z", 6), ("43.39Z", 4), ("43.91B", 3), ("43.99C", 5),
    ("45.11Z", 4), ("45.20A", 6), ("46.34Z", 2), ("46.69B", 2), ("46.90Z", 4), ("47.11B", 4),
    ("47.11D", 2), ("47.19B", 3), ("47.25Z", 2), ("47.73Z", 3), ("47.71Z", 6), ("47.91B", 8),
    ("47.99A", 2), ("49.32Z", 5), ("49.41A", 3), ("49.41B", 3), ("52.10B", 1), ("53.20Z", 4),
    ("55.10Z", 3), ("55.20Z", 4), ("56.10A", 10), ("56.10C", 8), ("56.21Z", 2), ("56.30Z", 5),
    ("58.11Z", 1), ("62.01Z", 10), ("62.02A", 8), ("63.11Z", 2), ("64.20Z", 8), ("66.22Z", 4),
    ("68.10Z", 4), ("68.20A", 12), ("68.20B", 18), ("68.31Z", 6), ("69.10Z", 5), ("69.20Z", 5),
    ("70.10Z", 6), ("70.22Z", 18), ("71.11Z", 4), ("71.12B", 6), ("71.20B", 1), ("73.11Z", 3),
    ("74.10Z", 6), ("74.20Z", 4), ("74.90B", 6), ("77.11A", 1), ("78.20Z", 1), ("81.21Z", 3),
    ("81.30Z", 4), ("82.11Z", 2), ("82.99Z", 4), ("84.11Z", 2), ("85.59A", 5), ("85.59B", 8),
    ("86.21Z", 8), ("86.23Z", 3), ("86.90D", 6), ("86.90E", 5), ("88.10A", 2), ("88.91A", 2),
    ("90.01Z", 4), ("93.12Z", 4), ("93.29Z", 3), ("94.11Z", 1), ("94.99Z", 20), ("96.02A", 8),
    ("96.02B", 5), ("96.04Z", 3), ("96.09Z", 6), ("97.00Z", 3),
)  # fmt: skip

# INSEE staff bands; "" and NN (no staff declared / unknown) dominate the real stock.
TRANCHES: tuple[tuple[str, int], ...] = (
    ("", 30), ("NN", 24), ("00", 14), ("01", 10), ("02", 7), ("03", 5), ("11", 4), ("12", 3),
    ("21", 1), ("22", 1), ("31", 1), ("32", 1), ("41", 1), ("42", 1), ("51", 1), ("52", 1),
    ("53", 1),
)  # fmt: skip
EMPLOYING_BANDS = frozenset(
    {"01", "02", "03", "11", "12", "21", "22", "31", "32", "41", "42", "51", "52", "53"}
)

VOIE_TYPES: tuple[tuple[str, int], ...] = (
    ("RUE", 45), ("AV", 9), ("BD", 4), ("CHE", 10), ("RTE", 9), ("PL", 5), ("IMP", 4), ("ALL", 3),
    ("LD", 3), ("QUA", 2), ("ZA", 2), ("ZI", 1), ("QU", 1), ("CRS", 1), ("SQ", 1), ("HAM", 1),
    ("", 2),
)  # fmt: skip

VOIE_NAMES: tuple[str, ...] = (
    "DE LA REPUBLIQUE", "JEAN JAURES", "DU GENERAL DE GAULLE", "VICTOR HUGO", "DE LA GARE",
    "PASTEUR", "DES ECOLES", "DU MOULIN", "DE L EGLISE", "DE LA MAIRIE", "NATIONALE", "GAMBETTA",
    "JULES FERRY", "DU 8 MAI 1945", "DU 11 NOVEMBRE", "DE LA LIBERATION", "DES LILAS", "DES ROSES",
    "DU STADE", "DE LA FONTAINE", "DU CHATEAU", "DES VIGNES", "DE PARIS", "DE LYON",
    "SAINT MARTIN", "DES PRES", "DU CENTRE", "DE LA PAIX", "CARNOT", "FOCH", "DU COMMERCE",
    "DES CHAMPS", "DU PONT", "DES JARDINS", "DU BOIS", "DES ACACIAS", "DES TILLEULS",
    "DES PEUPLIERS", "DU PORT", "DU MARCHE", "DE LA POSTE", "JEAN MOULIN", "ANATOLE FRANCE",
    "EMILE ZOLA", "DU MARECHAL LECLERC", "DE VERDUN", "DES FLEURS", "DES ERABLES", "DE LA FORET",
    "DU LAVOIR", "DU PUITS", "DE LA CROIX", "D'ASTORG", "DES GRANDS CHAMPS", "DE LA COMBE",
    "DES CHENES", "DU PRE", "DES SABLONS", "DE LA CROIX BLANCHE", "DES TANNEURS", "DU FOUR",
    "DES ARTISANS", "DE L INDUSTRIE", "DES FORGES", "DU VIEUX BOURG", "ALSACE LORRAINE",
    "PIERRE CURIE", "LOUIS PASTEUR", "DES BLEUETS", "DU CHAMP DE FOIRE", "DE LA VALLEE",
    "DU COTEAU", "DES CERISIERS", "DES PLATANES", "DE BEAUNE", "DE DIJON", "DES CAVES",
)  # fmt: skip

COMPLEMENTS: tuple[str, ...] = (
    "ZA DES CHAMPS", "ZI NORD", "LIEU DIT LES GRANDS PRES", "RESIDENCE LES TILLEULS", "BATIMENT B",
    "CENTRE COMMERCIAL LES ARCADES", "ZA DU MOULIN, BATIMENT 3", "PARC D ACTIVITES, LOT 12",
    "LE BOURG", "IMMEUBLE LE TRIANON", "ESPACE ENTREPRISES", "LES HAUTS DE LA COMBE",
    "CHEZ MME DURAND, 2EME ETAGE", "HAMEAU DE LA GRANGE", "ZAC DES PORTES DE BOURGOGNE",
)  # fmt: skip
MULTILINE_COMPLEMENTS: tuple[str, ...] = ("BATIMENT A\nESCALIER 2", "RESIDENCE DU PARC\nAPPT 14")

SIGN_KINDS: tuple[str, ...] = (
    "BOULANGERIE", "BOUCHERIE", "GARAGE", "CAFE", "RESTAURANT", "PHARMACIE", "CABINET", "ATELIER",
    "BAR", "HOTEL", "SALON", "PRESSING", "EPICERIE", "TABAC", "CAVE", "FERME", "MENUISERIE",
    "PLOMBERIE", "ELECTRICITE", "TRANSPORTS", "AMBULANCES", "AUTO ECOLE", "INSTITUT", "LIBRAIRIE",
    "FLEURS", "IMMOBILIER", "TAXI", "PIZZERIA", "BRASSERIE", "DOMAINE", "SCIERIE", "CARROSSERIE",
    "MAISON", "COMPTOIR", "ENTREPRISE", "BOULANGERIE PATISSERIE", "SALON DE COIFFURE",
)  # fmt: skip
SIGN_PLACES: tuple[str, ...] = (
    "DU CENTRE", "DE LA GARE", "DES VIGNES", "DU MARCHE", "DE LA PLACE", "DU PORT", "DES TILLEULS",
    "SAINT MARTIN", "DU CHATEAU", "DE LA MAIRIE", "DE L EGLISE", "DU LAC", "DU MIDI", "DU NORD",
    "DE LA POSTE", "DES HALLES", "DU MOULIN", "DE LA FONTAINE", "DU PONT", "DES QUATRE VENTS",
)  # fmt: skip
SURNAMES: tuple[str, ...] = (
    "MARTIN", "BERNARD", "THOMAS", "PETIT", "ROBERT", "RICHARD", "DURAND", "DUBOIS", "MOREAU",
    "LAURENT", "SIMON", "MICHEL", "LEFEBVRE", "LEROY", "ROUX", "DAVID", "BERTRAND", "MOREL",
    "FOURNIER", "GIRARD", "BONNET", "DUPONT", "LAMBERT", "FONTAINE", "ROUSSEAU", "VINCENT",
    "MULLER", "FAURE", "ANDRE", "MERCIER", "BLANC", "GUERIN", "BOYER", "GARNIER", "CHEVALIER",
    "LEGRAND", "GAUTHIER", "PERRIN", "ROBIN", "CLEMENT", "MORIN", "NICOLAS", "HENRY", "MASSON",
)  # fmt: skip
ODD_SIGNS: tuple[str, ...] = (
    "BAR, TABAC DE LA GARE", "PAIN, VIN ET FROMAGES", 'LE "P\'TIT" CREUX', 'CHEZ "TONTON"',
    "L'ATELIER DU BOIS", "L'ESCALE, CAFE", "O'SULLIVANS", "LA TABLE D'HOTES",
)  # fmt: skip

COMMUNE_PREFIXES: tuple[str, ...] = ("", "", "", "", "SAINT-", "SAINTE-", "LE ", "LA ", "LES ")
COMMUNE_ROOTS: tuple[str, ...] = (
    "MARTIN", "GERMAIN", "VILLERS", "MONTIGNY", "BEAUMONT", "CHAMPAGNE", "FONTAINE", "VILLENEUVE",
    "BOURG", "NEUVILLE", "CHATEAUNEUF", "BELLEVUE", "ROCHEFORT", "MONTREUIL", "VAUX", "CHARMES",
    "ESSERT", "BRETTEVILLE", "LAVAL", "MOLIERE", "FLEURY", "SAULX", "AUBIGNY", "CORCELLES",
    "TREVOUX", "PLOERMEL", "ARGENTAN", "MAREUIL", "LUSIGNAN", "CERNAY", "BUXEROLLES", "VERNOIS",
)  # fmt: skip
COMMUNE_SUFFIXES: tuple[str, ...] = (
    "", "", "", "", "-SUR-SAONE", "-LES-BAINS", "-EN-BRESSE", "-LE-CHATEL", "-SOUS-BOIS",
    "-SUR-MER", "-LA-FORET", "-EN-VEXIN", "-SUR-LOIRE", "-LES-DIJON", "-D'AUNIS",
)  # fmt: skip
FOREIGN: tuple[tuple[str, str, str], ...] = (
    ("BRUXELLES", "99131", "BELGIQUE"), ("GENEVE", "99140", "SUISSE"),
    ("LUXEMBOURG", "99137", "LUXEMBOURG"), ("MADRID", "99134", "ESPAGNE"),
    ("LONDRES", "99132", "ROYAUME-UNI"), ("MONACO", "99138", "MONACO"),
)  # fmt: skip
METRO_DEPARTMENTS: tuple[str, ...] = tuple(f"{n:02d}" for n in range(1, 96) if n != 20) + (
    "2A",
    "2B",
)
DOM_DEPARTMENTS: tuple[str, ...] = ("971", "972", "973", "974", "976")
# Rough bounding boxes of the local projected systems INSEE uses outside mainland France.
DOM_BOXES: dict[str, tuple[float, float, float, float]] = {
    "971": (630_000, 710_000, 1_760_000, 1_830_000),
    "972": (690_000, 740_000, 1_590_000, 1_650_000),
    "973": (150_000, 400_000, 230_000, 640_000),
    "974": (315_000, 380_000, 7_630_000, 7_690_000),
    "976": (500_000, 530_000, 8_560_000, 8_600_000),
}


def lambert93(lat: float, lon: float) -> tuple[float, float]:
    """Project WGS84 degrees to Lambert-93 (EPSG:2154) metres."""
    a, e = 6_378_137.0, 0.0818191910428158  # GRS80
    phi1, phi2, phi0 = math.radians(44.0), math.radians(49.0), math.radians(46.5)
    lon0 = math.radians(3.0)

    def m(phi: float) -> float:
        return math.cos(phi) / math.sqrt(1 - (e * math.sin(phi)) ** 2)

    def t(phi: float) -> float:
        s = e * math.sin(phi)
        return math.tan(math.pi / 4 - phi / 2) / ((1 - s) / (1 + s)) ** (e / 2)

    n = (math.log(m(phi1)) - math.log(m(phi2))) / (math.log(t(phi1)) - math.log(t(phi2)))
    f = m(phi1) / (n * t(phi1) ** n)
    rho0 = a * f * t(phi0) ** n
    rho = a * f * t(math.radians(lat)) ** n
    theta = n * (math.radians(lon) - lon0)
    return 700_000 + rho * math.sin(theta), 6_600_000 + rho0 - rho * math.cos(theta)


def csv_field(value: str) -> str:
    """Quote a value the way a minimal-quoting CSV writer does."""
    if any(ch in value for ch in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


def _weighted(rng: random.Random, items: Sequence[tuple[str, int]], size: int) -> list[str]:
    values = [value for value, _ in items]
    weights = [weight for _, weight in items]
    return rng.choices(values, weights=weights, k=size)


@dataclass(frozen=True)
class _Commune:
    code: str
    postcode: str
    name: str
    x: float
    y: float
    head: str  # pre-rendered codePostal,libelleCommune
    block: str  # pre-rendered columns codePostal..libellePaysEtranger (9 columns)
    cedex_block: str  # the same with a BP / CEDEX distribution


def _make_commune(code: str, postcode: str, name: str, x: float, y: float, bp: int) -> _Commune:
    head = f"{postcode},{csv_field(name)}"
    block = f"{head},,,{code},,,,"
    cedex_block = f"{head},,BP {bp},{code},{postcode},{csv_field(name + ' CEDEX')},,"
    return _Commune(code, postcode, name, x, y, head, block, cedex_block)


def _random_position(rng: random.Random, department: str) -> tuple[float, float]:
    if department in DOM_BOXES:
        x0, x1, y0, y1 = DOM_BOXES[department]
        return rng.uniform(x0, x1), rng.uniform(y0, y1)
    return lambert93(rng.uniform(42.4, 51.0), rng.uniform(-4.6, 8.1))


def _other_communes(rng: random.Random, count: int, exclude: set[str]) -> list[_Commune]:
    """Synthetic communes all over France (codes shaped like INSEE's, never in exclude)."""
    communes: list[_Commune] = []
    seen: set[str] = set()
    while len(communes) < count:
        if rng.random() < 0.03:
            department = rng.choice(DOM_DEPARTMENTS)
            code = f"{department}{rng.randrange(1, 60):02d}"
            postcode = f"{department}{rng.randrange(0, 10) * 10:02d}"
        else:
            department = rng.choice(METRO_DEPARTMENTS)
            code = f"{department}{rng.randrange(1, 800):03d}"
            prefix = {"2A": "20", "2B": "20"}.get(department, department)
            postcode = f"{prefix}{rng.randrange(0, 100) * 10:03d}"
        if code in exclude or code in seen:
            continue
        seen.add(code)
        name = (
            rng.choice(COMMUNE_PREFIXES) + rng.choice(COMMUNE_ROOTS) + rng.choice(COMMUNE_SUFFIXES)
        )
        x, y = _random_position(rng, department)
        communes.append(_make_commune(code, postcode, name, x, y, rng.randrange(1, 400)))
    return communes


def _keep_commune(rng: random.Random, code: str) -> _Commune:
    if code in KNOWN_COMMUNES:
        name, postcode, lat, lon = KNOWN_COMMUNES[code]
        x, y = lambert93(lat, lon)
    else:
        department = code[:3] if code.startswith("97") else code[:2]
        postcode = code[:3] + "00" if code.startswith("97") else code[:2] + "000"
        name = f"COMMUNE {code}"
        x, y = _random_position(rng, department)
    return _make_commune(code, postcode, name, x, y, rng.randrange(1, 400))


def _voie_pool(rng: random.Random, size: int) -> list[tuple[str, str, str]]:
    """(rendered complement..libelleVoie columns, BAN street key, padded number) triples."""
    types = _weighted(rng, VOIE_TYPES, size)
    pool = []
    for index in range(size):
        if index < len(MULTILINE_COMPLEMENTS):
            complement = MULTILINE_COMPLEMENTS[index]
        else:
            complement = rng.choice(COMPLEMENTS) if rng.random() < 0.12 else ""
        number = str(1 + int(rng.random() ** 2.5 * 250)) if rng.random() < 0.8 else ""
        index_rep = ""
        last_number = last_index = ""
        if number:
            roll = rng.random()
            index_rep = "B" if roll < 0.03 else "T" if roll < 0.04 else "Q" if roll < 0.042 else ""
            if rng.random() < 0.02:
                last_number = str(int(number) + rng.randrange(2, 12, 2))
                last_index = "B" if rng.random() < 0.1 else ""
        voie_type = types[index]
        label = rng.choice(VOIE_NAMES) if voie_type or rng.random() < 0.5 else ""
        if not label:  # no street at all: a bare lieu-dit or a rural address
            number = index_rep = last_number = last_index = ""
        fields = (complement, number, index_rep, last_number, last_index, voie_type, label)
        street_key = f"{rng.randrange(10_000):04d}" if label else ""
        padded = f"{int(number):05d}" if number else ""
        pool.append((",".join(csv_field(v) for v in fields), street_key, padded))
    return pool


def _sign(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.01:
        return rng.choice(ODD_SIGNS)
    if roll < 0.45:
        return f"{rng.choice(SIGN_KINDS)} {rng.choice(SIGN_PLACES)}"
    if roll < 0.85:
        return f"{rng.choice(SIGN_KINDS)} {rng.choice(SURNAMES)}"
    return f"{rng.choice(SURNAMES)} {rng.choice(('ET FILS', 'FRERES', 'ET ASSOCIES', 'SERVICES'))}"


def _naming_pool(rng: random.Random, size: int) -> list[str]:
    """Rendered enseigne1..3 + denominationUsuelle columns; about a quarter are all empty."""
    pool = []
    for _ in range(size):
        roll = rng.random()
        enseignes = ["", "", ""]
        usual = ""
        if roll < 0.25:
            pass
        elif roll < 0.60:
            enseignes[0] = _sign(rng)
        elif roll < 0.80:
            usual = _sign(rng)
        elif roll < 0.95:
            enseignes[0] = _sign(rng)
            usual = enseignes[0] if rng.random() < 0.5 else _sign(rng)
        else:
            enseignes = [_sign(rng), _sign(rng), _sign(rng) if rng.random() < 0.2 else ""]
        pool.append(",".join(csv_field(v) for v in (*enseignes, usual)))
    return pool


def _date_strings(start: date, end: date) -> list[str]:
    return [
        (start + timedelta(days=offset)).isoformat() for offset in range((end - start).days + 1)
    ]


def _siren_chunks() -> tuple[list[int], list[int]]:
    """Luhn partial sums of every 4-digit block, rightmost digit kept (T0) or doubled (T1)."""
    doubled = [0, 2, 4, 6, 8, 1, 3, 5, 7, 9]
    t0, t1 = [], []
    for n in range(10_000):
        d = (n // 1000, n // 100 % 10, n // 10 % 10, n % 10)
        t0.append(doubled[d[0]] + d[1] + doubled[d[2]] + d[3])
        t1.append(d[0] + doubled[d[1]] + d[2] + doubled[d[3]])
    return t0, t1


def write_sirene_file(
    path: str | Path,
    *,
    rows: int,
    keep_communes: Sequence[str],
    keep_ratio: float = 0.01,
    seed: int = 0,
    closed_ratio: float = 0.1,
) -> int:
    """Write a StockEtablissement-shaped CSV of `rows` establishments; return the active kept ones.

    About keep_ratio of the rows sit in keep_communes (uniformly), the rest in synthetic communes
    all over France (plus a few abroad). The count returned is the number of rows whose
    codeCommuneEtablissement is in keep_communes and whose etatAdministratifEtablissement is "A".
    Output is deterministic for a given seed and written in chunks, never held in memory whole.
    NAF 2025 values are placeholders (the rév. 2 code repeated), not INSEE's real mapping.
    """
    if rows < 0:
        raise ValueError("rows must be >= 0")
    keep_codes = list(dict.fromkeys(keep_communes))
    keep_set = set(keep_codes)
    rng = random.Random(seed)

    keep_pool = [_keep_commune(rng, code) for code in keep_codes]
    other_pool = _other_communes(rng, 3000, keep_set)
    voies = _voie_pool(rng, 8192)
    namings = _naming_pool(rng, 8192)
    naf_pool = _weighted(rng, NAF_CODES, 4096)
    tranche_pool = _weighted(rng, TRANCHES, 4096)
    dates = _date_strings(date(1950, 1, 1), date(2025, 12, 31))
    last_date = len(dates) - 1
    processed = [
        f"{d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}"
        for d in rng.choices(dates[-4000:], k=4096)
    ]
    craft_codes = [f"{naf[:2]}{naf[3:6]}{rng.choice('ABCDZ')}" for naf in naf_pool[:512]]
    offsets = [rng.gauss(0, 600) for _ in range(4096)]
    second_addresses = [f"BP {rng.randrange(1, 500)}" for _ in range(256)]
    periods = rng.choices(
        ("1", "2", "3", "4", "5", "6", "7"), weights=(40, 30, 14, 8, 4, 2, 2), k=1024
    )
    etab_counts = rng.choices(
        range(1, 13), weights=(65, 18, 7, 3, 2, 1, 1, 1, 1, 0.5, 0.3, 0.2), k=1024
    )
    t0, t1 = _siren_chunks()
    doubled = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
    empty_second = "," * 13

    random_ = rng.random
    bits = rng.getrandbits
    mean_step = max(2, int(90_000_000 / max(rows, 1)))
    base = rng.randrange(0, 1_000_000)
    kept = written = 0
    buffer: list[str] = []

    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(",".join(SIRENE_COLUMNS) + "\n")
        while written < rows:
            base += 1 + int(random_() * 2 * mean_step)
            if base > 99_999_999:
                base = rng.randrange(0, 1_000_000)  # wrap for huge runs; duplicates stay rare
            high, low = divmod(base, 10_000)
            key = (10 - (t1[high] + t1[low]) % 10) % 10
            siren = f"{base:08d}{key}"
            siren_sum = t0[high] + t0[low] + doubled[key]
            count = min(etab_counts[bits(10)], rows - written)
            head_office = bits(10) % count
            nic4 = 1
            for position in range(count):
                nic_key = (10 - (siren_sum + t1[nic4]) % 10) % 10
                nic = f"{nic4:04d}{nic_key}"
                nic4 += 1 if random_() < 0.8 else 2

                closed = random_() < closed_ratio
                roll = random_()
                if roll < keep_ratio and keep_pool:
                    commune = keep_pool[int(random_() * len(keep_pool))]
                    foreign = None
                elif roll > 0.999:
                    commune = None
                    foreign = FOREIGN[bits(12) % len(FOREIGN)]
                else:
                    commune = other_pool[int(random_() * 3000)]
                    foreign = None

                partial = random_() < 0.04
                voie_block, street_key, padded = voies[bits(13)]
                if commune is not None:
                    place = commune.cedex_block if random_() < 0.015 else commune.block
                    if partial:
                        voie_block = ",[ND],,,,[ND],[ND]"
                        ident = lx = ly = NOT_DIFFUSED
                    elif random_() < 0.05:
                        ident = lx = ly = ""
                    else:
                        ident = (
                            f"{commune.code}_{street_key}_{padded}" if street_key and padded else ""
                        )
                        lx = f"{commune.x + offsets[bits(12)]:.1f}"
                        ly = f"{commune.y + offsets[bits(12)]:.1f}"
                    if random_() < 0.01:
                        bp = second_addresses[bits(8)]
                        second = f",,,,,{commune.head},,{bp},{commune.code},,,,"
                    else:
                        second = empty_second
                else:
                    assert foreign is not None
                    town, country_code, country = foreign
                    place = f",,{town},,,,,{country_code},{country}"
                    ident = lx = ly = ""
                    second = empty_second

                tranche = tranche_pool[bits(12)]
                if closed:
                    tranche = "" if random_() < 0.7 else "NN"
                year = "" if tranche in ("", "NN") else ("2023" if random_() < 0.7 else "2022")
                created = int(last_date * (1 - random_() ** 2))
                started = created + int((last_date - created) * random_() ** 3)
                naf = naf_pool[bits(12)]
                employer = "O" if tranche in EMPLOYING_BANDS and not closed else "N"
                craft = craft_codes[bits(9)] if random_() < 0.06 else ""
                last_processed = "" if closed and random_() < 0.3 else processed[bits(12)]
                if last_processed and last_processed < dates[started]:
                    last_processed = dates[started] + last_processed[10:]

                buffer.append(
                    f"{siren},{nic},{siren}{nic},{'P' if partial else 'O'},"
                    f"{dates[created] if random_() > 0.01 else ''},{tranche},{year},{craft},"
                    f"{last_processed},{'true' if position == head_office else 'false'},"
                    f"{periods[bits(10)]},{voie_block},{place},{ident},{lx},{ly},{second},"
                    f"{dates[started]},{'F' if closed else 'A'},{namings[bits(13)]},"
                    f"{naf},NAFRev2,{employer},{'' if closed else naf}\n"
                )
                if not closed and commune is not None and commune.code in keep_set:
                    kept += 1
            written += count
            if len(buffer) >= CHUNK_ROWS:
                out.write("".join(buffer))
                buffer.clear()
        out.write("".join(buffer))
    return kept


# The columns of StockUniteLegale_utf8.csv as INSEE publishes it (2025), in file order.
LEGAL_UNIT_COLUMNS: tuple[str, ...] = (
    "siren", "statutDiffusionUniteLegale", "unitePurgeeUniteLegale", "dateCreationUniteLegale",
    "sigleUniteLegale", "sexeUniteLegale", "prenom1UniteLegale", "prenom2UniteLegale",
    "prenom3UniteLegale", "prenom4UniteLegale", "prenomUsuelUniteLegale",
    "pseudonymeUniteLegale", "identifiantAssociationUniteLegale", "trancheEffectifsUniteLegale",
    "anneeEffectifsUniteLegale", "dateDernierTraitementUniteLegale", "nombrePeriodesUniteLegale",
    "categorieEntreprise", "anneeCategorieEntreprise", "dateDebut",
    "etatAdministratifUniteLegale", "nomUniteLegale", "nomUsageUniteLegale",
    "denominationUniteLegale", "denominationUsuelle1UniteLegale",
    "denominationUsuelle2UniteLegale", "denominationUsuelle3UniteLegale",
    "categorieJuridiqueUniteLegale", "activitePrincipaleUniteLegale",
    "nomenclatureActivitePrincipaleUniteLegale", "nicSiegeUniteLegale",
    "economieSocialeSolidaireUniteLegale", "societeMissionUniteLegale",
    "caractereEmployeurUniteLegale", "activitePrincipaleNAF25UniteLegale",
)  # fmt: skip
FIRST_NAMES: tuple[str, ...] = (
    "JEAN", "MARIE", "PIERRE", "ANNE", "MICHEL", "SOPHIE", "LOUIS", "CLAIRE", "PAUL", "JULIE",
)  # fmt: skip


def write_legal_units_file(path: str | Path, sites: str | Path, *, seed: int = 0) -> int:
    """Write a StockUniteLegale-shaped CSV with one legal unit per SIREN of the sites file; return its rows.

    About 60 % are companies (a denomination), the others sole traders (names only); about
    4 % are partially diffusible ("P", their fields [ND]) like in INSEE's stock. The SIRENs
    are read from the first column of ``sites`` (a file written by ``write_sirene_file``).
    """
    rng = random.Random(seed)
    random_ = rng.random
    written = 0
    previous = b""
    buffer: list[str] = []
    with open(sites, "rb") as source, open(path, "w", encoding="utf-8", newline="") as out:
        out.write(",".join(LEGAL_UNIT_COLUMNS) + "\n")
        source.readline()
        for line in source:
            siren = line[:9]
            if siren == previous or not siren.isdigit():
                continue
            previous = siren
            partial = random_() < 0.04
            company = random_() < 0.6
            surname = SURNAMES[int(random_() * len(SURNAMES))]
            first = FIRST_NAMES[int(random_() * len(FIRST_NAMES))]
            if partial:
                sex, first1, usual, last, denomination = "[ND]", "[ND]", "[ND]", "[ND]", ""
                if company:
                    sex = first1 = usual = last = ""
                    denomination = "[ND]"
            elif company:
                sex = first1 = usual = last = ""
                denomination = csv_field(
                    f"{surname} {rng.choice(('SAS', 'SARL', 'ET FILS', 'SA'))}"
                )
            else:
                sex, first1, usual, last, denomination = "M", first, first, surname, ""
            naf = NAF_CODES[int(random_() * len(NAF_CODES))][0]
            buffer.append(
                f"{siren.decode()},{'P' if partial else 'O'},,2001-05-14,,{sex},{first1},,,,{usual},,,"
                f"NN,,2024-03-01T10:00:00,2,PME,2022,2001-05-14,A,{last},,{denomination},,,,"
                f"{'5710' if company else '1000'},{naf},NAFRev2,00012,N,,N,{naf}\n"
            )
            written += 1
            if len(buffer) >= CHUNK_ROWS:
                out.write("".join(buffer))
                buffer.clear()
        out.write("".join(buffer))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", type=Path)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--commune", action="append", default=[], help="INSEE code to keep (repeatable)"
    )
    parser.add_argument("--keep-ratio", type=float, default=0.01)
    parser.add_argument("--closed-ratio", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    kept = write_sirene_file(
        args.output,
        rows=args.rows,
        keep_communes=args.commune,
        keep_ratio=args.keep_ratio,
        seed=args.seed,
        closed_ratio=args.closed_ratio,
    )
    elapsed = time.perf_counter() - started
    size_mb = args.output.stat().st_size / 1_000_000
    print(
        f"wrote {args.rows} rows ({size_mb:.1f} MB) to {args.output} in {elapsed:.1f} s; kept {kept} active rows"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
