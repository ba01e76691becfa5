"""Regenerate the bundled fictional sample territory synergie/sample/nuits-saint-georges.csv."""

from __future__ import annotations

import argparse
import csv
import io
import random
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from stdnum.fr import siret as siret_check

SEED = 21464  # INSEE code of Nuits-Saint-Georges; changing it changes every generated value.
OUTPUT = Path(__file__).resolve().parent.parent / "synergie" / "sample" / "nuits-saint-georges.csv"

HEADER = (
    "siret",
    "raison_sociale",
    "code_naf",
    "tranche_effectifs",
    "adresse",
    "code_postal",
    "commune",
    "code_commune",
    "latitude",
    "longitude",
    "contact_nom",
    "contact_fonction",
    "courriel",
    "telephone",
)


@dataclass(frozen=True)
class Commune:
    """A real commune of the CC de Gevrey-Chambertin et de Nuits-Saint-Georges."""

    name: str
    insee: str
    postcode: str
    lat_dms: tuple[int, int, int]
    lon_dms: tuple[int, int, int]

    @property
    def lat(self) -> float:
        return _dms(self.lat_dms)

    @property
    def lon(self) -> float:
        return _dms(self.lon_dms)


def _dms(value: tuple[int, int, int]) -> float:
    degrees, minutes, seconds = value
    return degrees + minutes / 60 + seconds / 3600


# INSEE codes and postcodes checked against La Poste's code-postal file (BaseAdresseNationale/
# codes-postaux, code_postaux_v201410.csv) and the communes' Wikipedia infoboxes, which also give
# the intercommunality and the centre coordinates used here.
COMMUNES: dict[str, Commune] = {
    "nsg": Commune("Nuits-Saint-Georges", "21464", "21700", (47, 8, 18), (4, 57, 4)),
    "gevrey": Commune("Gevrey-Chambertin", "21295", "21220", (47, 13, 38), (4, 58, 5)),
    "brochon": Commune("Brochon", "21110", "21220", (47, 14, 23), (4, 58, 18)),
    "morey": Commune("Morey-Saint-Denis", "21442", "21220", (47, 11, 47), (4, 57, 51)),
    "vougeot": Commune("Vougeot", "21716", "21640", (47, 10, 38), (4, 57, 51)),
    "vosne": Commune("Vosne-Romanée", "21714", "21700", (47, 9, 37), (4, 57, 16)),
    "premeaux": Commune("Premeaux-Prissey", "21506", "21700", (47, 6, 47), (4, 56, 7)),
    "comblanchien": Commune("Comblanchien", "21186", "21700", (47, 6, 8), (4, 55, 19)),
    "corgoloin": Commune("Corgoloin", "21194", "21700", (47, 5, 5), (4, 54, 55)),
    "saint-nicolas": Commune(
        "Saint-Nicolas-lès-Cîteaux", "21564", "21700", (47, 6, 56), (5, 3, 19)
    ),
}


@dataclass(frozen=True)
class Company:
    """One fictional company; every contact channel is derived so that it reaches nobody."""

    commune: str
    name: str
    naf: str
    tranche: str
    street: str  # invented street; a house number is added unless it starts with "ZA"/"ZI"
    slug: str  # short ASCII tag used in e-mail addresses
    contact: str = ""  # empty: generic contact only
    role: str = ""
    has_siret: bool = True
    has_email: bool = True
    has_phone: bool = True


# fmt: off
COMPANIES: tuple[Company, ...] = (
    # Nuits-Saint-Georges
    Company("nsg", "Cartonnages de la Vouge", "17.21A", "21", "ZA du Pré Sarrazin", "cartonnages-vouge", "Claire Vannier", "Directrice"),
    Company("nsg", "Imprimerie Nuitonne du Meix-Bas", "18.12Z", "11", "rue des Cinq Muids", "imprimerie-meixbas", "Hervé Guillemot", "Gérant"),
    Company("nsg", "Maison Bertillot-Sarrazin, négociant-éleveur", "46.34Z", "12", "avenue de la Cuverie", "bertillot-sarrazin", "Aurélie Chaumont", "Responsable QHSE"),
    Company("nsg", "Domaine de la Combe aux Merles", "01.21Z", "02", "chemin des Trois Cuvées", "combe-merles", "Julien Perrichot", "Gérant"),
    Company("nsg", "Distillerie du Cassis Noir", "11.01Z", "11", "rue du Vieux Foudre", "cassis-noir", "Sandrine Lhuillier", "Directrice de production"),
    Company("nsg", "Tonnellerie du Merrain d'Or", "16.24Z", "12", "rue du Merrain", "merrain-or", "Thomas Berthaut", "Maître tonnelier"),
    Company("nsg", "Transports Routiers de la Côte Nuitonne", "49.41A", "21", "ZI des Vignes Basses", "trc-nuitonne"),
    Company("nsg", "Boulangerie Le Fournil des Hautes-Côtes", "10.71C", "02", "place du Sarment Vert", "fournil-hautes-cotes", "Maxime Carrelet", "Gérant"),
    Company("nsg", "Mécanique de Précision Saint-Georges", "25.62B", "11", "ZI des Vignes Basses", "meca-saint-georges", "Nadia Bouchard", "Responsable achats"),
    Company("nsg", "Palettes & Emballages Bois de l'Arbuère", "16.24Z", "03", "chemin de la Grange aux Dîmes", "palettes-arbuere", "Gilles Mouchotte", "Gérant"),
    Company("nsg", "Laboratoire Œnologique des Deux Côtes", "71.20B", "03", "rue des Ouvrées", "labo-deux-cotes", "Éloïse Dardelin", "Directrice"),
    Company("nsg", "Négoce des Vins de la Courtavaux", "46.34Z", "11", "rue de la Pièce Bourguignonne", "vins-courtavaux", "Bruno Lachaux", "Responsable logistique"),
    Company("nsg", "Chocolaterie Gourmandise Nuitonne", "10.82Z", "03", "impasse des Feuillettes", "chocolaterie-nuitonne", "Inès Ravenet", "Gérante"),
    Company("nsg", "Garage du Champ Tions", "45.20A", "02", "route de la Plaine Vineuse", "garage-champ-tions", "Karim Sellier", "Gérant"),
    Company("nsg", "Ressourcerie La Seconde Cuvée", "38.32Z", "02", "rue de la Corvée aux Chênes", "seconde-cuvee", "Mathilde Gorgeon", "Coordinatrice"),
    Company("nsg", "Les Amis du Pressoir", "94.99Z", "NN", "allée du Pressoir Neuf", "amis-pressoir", "Jean-Paul Tissot", "Président", has_siret=False, has_phone=False),
    Company("nsg", "Hôtel-Restaurant Le Relais des Vendangeurs", "55.10Z", "11", "avenue de la Cuverie", "relais-vendangeurs"),
    Company("nsg", "Électricité Générale du Meuzin", "43.21A", "03", "rue des Cinq Muids", "elec-meuzin", "Romain Pelletey", "Co-gérant"),
    Company("nsg", "Plasturgie Nuitonne d'Emballages", "22.22Z", "31", "ZI des Vignes Basses", "plasturgie-nuitonne", "Véronique Marlot", "Responsable environnement"),
    Company("nsg", 'Atelier "Le Copeau Vif"', "16.23Z", "01", "impasse des Feuillettes", "copeau-vif", "Lucas Moingeon", "Artisan menuisier"),
    # Gevrey-Chambertin
    Company("gevrey", "Menuiserie Bernardot Père & Fils", "43.32A", "03", "rue des Tilleuls Penchés", "menuiserie-bernardot", "Denis Bernardot", "Gérant"),
    Company("gevrey", "Salaisons Gibriaçoises", "10.13A", "12", "ZA de la Combe Sèche", "salaisons-gibriacoises", "Patricia Voillot", "Directrice d'usine"),
    Company("gevrey", "Entrepôts Logistiques de la Combe Lavaux", "52.10B", "22", "ZA de la Combe Sèche", "entrepots-lavaux"),
    Company("gevrey", "Domaine des Terres Brunes", "01.21Z", "02", "chemin des Murgers Blancs", "terres-brunes", "Arnaud Jobard", "Chef de culture"),
    Company("gevrey", "Maison des Grands Échansons", "46.34Z", "11", "rue du Cellier Voûté", "grands-echansons", "Camille Thévenot", "Responsable QHSE"),
    Company("gevrey", "Mécanique et Outillage du Triage", "25.62B", "12", "rue des Aiguilleurs", "outillage-triage", "Franck Dumoulin", "Directeur technique"),
    Company("gevrey", "Peintures et Vernis Bourguignons", "20.30Z", "11", "ZA de la Combe Sèche", "peintures-bourguignons", "Lydie Garnier-Roux", "Responsable QHSE"),
    Company("gevrey", "Traiteur Le Cep Gourmand", "56.21Z", "02", "place des Tonneaux Vides", "cep-gourmand", "Olivier Chapuis", "Gérant"),
    Company("gevrey", "Carrosserie Industrielle de la Côte", "29.20Z", "21", "rue des Aiguilleurs", "carrosserie-cote", "Stéphane Rougeot", "Responsable production"),
    Company("gevrey", "Boulangerie-Pâtisserie Aux Blés de Bèze", "10.71C", "02", "rue du Cellier Voûté", "bles-beze", "Amélie Fourrier", "Gérante"),
    Company("gevrey", "Cuverie Collective de la Justice", "11.02B", "01", "chemin des Murgers Blancs", "cuverie-justice", "Pierre-Yves Naudin", "Maître de chai"),
    Company("gevrey", "Sérigraphie & Étiquettes du Clos", "18.12Z", "03", "rue des Tilleuls Penchés", "etiquettes-clos", "Hélène Baudot", "Gérante"),
    Company("gevrey", "Collectif Zéro Déchet Gevrey", "94.99Z", "NN", "place des Tonneaux Vides", "zero-dechet-gevrey", "Sophie Lamarche", "Présidente", has_siret=False),
    Company("gevrey", "Espaces Verts des Évocelles", "81.30Z", "03", "chemin des Haies Vives", "espaces-evocelles", "Mickaël Gauthey", "Gérant"),
    # Brochon
    Company("brochon", "Ferronnerie d'Art Brochonnaise", "25.11Z", "02", "rue de la Forge Éteinte", "ferronnerie-brochon", "Yannick Perdrizet", "Artisan ferronnier"),
    Company("brochon", "Domaine du Chemin des Bœufs", "01.21Z", "01", "chemin des Bœufs Lents", "chemin-boeufs", "Agnès Clerget-Vautrin", "Gérante"),
    Company("brochon", "Pépinières Viticoles du Plateau", "01.30Z", "03", "route du Plateau Calcaire", "pepinieres-plateau", "Laurent Mugnier", "Responsable commercial"),
    Company("brochon", "Atelier Vitrail Lumière d'Ocre", "23.19Z", "00", "rue de la Forge Éteinte", "vitrail-ocre", "Nathalie Brenot", "Artisane verrière", has_siret=False, has_email=False),
    # Morey-Saint-Denis
    Company("morey", "Domaine des Quatre Vents Moréens", "01.21Z", "02", "rue des Échalas", "quatre-vents", "Benoît Lignier-Cas", "Co-gérant"),
    Company("morey", "Matériel Vinicole Moréen", "28.93Z", "12", "ZA des Sarments", "materiel-moreen", "Christelle Pont", "Responsable SAV"),
    Company("morey", "Comptoir des Vins de Morey", "46.34Z", "03", "rue des Échalas", "comptoir-morey", "Didier Armenier", "Gérant"),
    # Vougeot
    Company("vougeot", "Chais Partagés de la Vouge", "11.02B", "02", "rue du Petit Bief", "chais-vouge", "Florence Hudelot", "Maître de chai"),
    Company("vougeot", "Auberge du Pont Chevalier", "56.10A", "03", "rue du Petit Bief", "auberge-pont-chevalier"),
    Company("vougeot", "Bouchons & Capsules de Bourgogne", "16.29Z", "11", "ZA de la Vouge Basse", "bouchons-capsules", "Rémi Castagnet", "Directeur"),
    # Vosne-Romanée
    Company("vosne", "Domaine des Sept Cuves", "01.21Z", "03", "rue des Grappes Mûres", "sept-cuves", "Émilie Noëllat-Brun", "Gérante"),
    Company("vosne", "Verrerie & Bouteilles de la Côte", "46.69B", "11", "route des Caves Fraîches", "verrerie-cote", "Sébastien Grivot-Lamy", "Responsable achats"),
    Company("vosne", "Gîtes et Caveau des Vendanges", "55.20Z", "00", "rue des Grappes Mûres", "gites-vendanges", "Marion Cacheux", "Gérante"),
    # Premeaux-Prissey
    Company("premeaux", "Scierie de la Courtavaux", "16.10A", "11", "chemin du Lavoir Neuf", "scierie-courtavaux", "Hugues Michelot", "Gérant"),
    Company("premeaux", "Cassis & Petits Fruits de Prissey", "10.39B", "12", "ZA des Cassissiers", "cassis-prissey", "Valérie Dubreuil", "Directrice qualité"),
    Company("premeaux", "Domaine de la Fontaine du Seuil", "01.21Z", "01", "rue de la Source Tiède", "fontaine-seuil", "Antoine Gavignet", "Gérant"),
    Company("premeaux", "Maraîchage Bio de la Bèze", "01.13Z", "00", "chemin du Lavoir Neuf", "maraichage-beze", "Léa Rossignol", "Exploitante", has_siret=False, has_phone=False),
    # Comblanchien
    Company("comblanchien", "Marbrerie de la Pierre Blanche", "23.70Z", "12", "route des Combes Rousses", "marbrerie-pierre-blanche", "Fabrice Nardin", "Directeur"),
    Company("comblanchien", "Extraction Calcaire des Combes Rousses", "08.11Z", "21", "route des Combes Rousses", "calcaire-combes-rousses", "Jérôme Sirugue", "Responsable QHSE"),
    Company("comblanchien", "Taille de Pierre Blancurtienne", "23.70Z", "02", "rue des Tailleurs de Pierre", "taille-blancurtienne", "Paolo Benedetti-Roy", "Artisan tailleur"),
    Company("comblanchien", "Chaudronnerie Inox de la Côte", "25.29Z", "12", "ZA du Banc de Roche", "chaudronnerie-inox", "Corinne Maréchal", "Responsable environnement"),
    # Corgoloin
    Company("corgoloin", "Embouteillage Mobile Côte-de-Nuits", "82.92Z", "11", "rue des Cuves Roulantes", "embouteillage-mobile", "David Lechenault", "Gérant"),
    Company("corgoloin", "Transports Frigorifiques de Cussigny", "49.41A", "12", "ZA de Cussigny Bas", "frigo-cussigny"),
    Company("corgoloin", "Compostage Vert de Moux", "38.21Z", "03", "chemin de la Fosse aux Marcs", "compostage-moux", "Anne-Laure Jacquinot", "Responsable d'exploitation"),
    # Saint-Nicolas-lès-Cîteaux
    Company("saint-nicolas", "Fromagerie de la Plaine Cistercienne", "10.51C", "11", "route de la Grange Neuve", "fromagerie-cistercienne", "Joseph Guyenot", "Directeur"),
    Company("saint-nicolas", "Exploitation Forestière de la Grange Neuve", "02.20Z", "03", "route de la Grange Neuve", "foret-grange-neuve", "Martine Bourgogne-Vial", "Gérante"),
)
# fmt: on

PHONE_PREFIX = "06 39 98"  # ARCEP range reserved for fiction: +33 6 39 98 xx xx
JITTER_DEGREES = 0.006  # about 500 m around the commune centre


def ascii_slug(text: str) -> str:
    """Lowercase ASCII form of a name, for e-mail local parts ("Éloïse" -> "eloise")."""
    decomposed = unicodedata.normalize("NFKD", text.replace("œ", "oe").replace("Œ", "Oe"))
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
    return "".join(ch if ch.isalnum() else "-" for ch in plain).strip("-")


def luhn_sum(digits: str) -> int:
    """Luhn sum of a digit string, doubling every second digit from the right."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total


def luhn_key(payload: str) -> str:
    """The digit to append to payload so that the whole number passes the Luhn check."""
    return str((10 - luhn_sum(payload + "0") % 10) % 10)


def fictional_siret(rng: random.Random, used: set[str]) -> str:
    """A SIRET (head office, NIC 0001x) on a random SIREN, both with valid Luhn keys."""
    while True:
        base = f"{rng.randrange(10_000_000, 99_999_999):08d}"
        siren = base + luhn_key(base)
        siret = siren + "0001" + luhn_key(siren + "0001")
        if siret not in used and siret_check.is_valid(siret):
            used.add(siret)
            return siret


def contact_email(company: Company, domain: str) -> str:
    """example.org/example.com address: named contact or generic front desk."""
    if not company.contact:
        return f"accueil.{company.slug}@example.com"
    first, _, last = company.contact.partition(" ")
    return f"{ascii_slug(first)[0]}.{ascii_slug(last)}.{company.slug}@{domain}"


def build_rows(seed: int = SEED) -> list[tuple[str, ...]]:
    """All sample rows, deterministic for a given seed."""
    rng = random.Random(seed)
    used_sirets: set[str] = set()
    phone_suffixes = rng.sample(range(10_000), len(COMPANIES))
    rows: list[tuple[str, ...]] = []
    for index, company in enumerate(COMPANIES):
        commune = COMMUNES[company.commune]
        siret = fictional_siret(rng, used_sirets) if company.has_siret else ""
        if company.street.startswith(("ZA ", "ZI ")):
            address = company.street
        else:
            address = f"{rng.randint(1, 48)} {company.street}"
        latitude = commune.lat + rng.uniform(-JITTER_DEGREES, JITTER_DEGREES)
        longitude = commune.lon + rng.uniform(-JITTER_DEGREES, JITTER_DEGREES)
        domain = "example.org" if index % 3 else "example.com"
        suffix = phone_suffixes[index]
        phone = f"{PHONE_PREFIX} {suffix // 100:02d} {suffix % 100:02d}"
        rows.append(
            (
                siret,
                company.name,
                company.naf,
                company.tranche,
                address,
                commune.postcode,
                commune.name,
                commune.insee,
                f"{latitude:.5f}",
                f"{longitude:.5f}",
                company.contact,
                company.role,
                contact_email(company, domain) if company.has_email else "",
                phone if company.has_phone else "",
            )
        )
    return rows


def render(seed: int = SEED) -> str:
    """The sample CSV as text: UTF-8, ';' separated, '\\n' line endings."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(build_rows(seed))
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument(
        "--check", action="store_true", help="fail if the file differs from a fresh render"
    )
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(
                f"{args.output} is out of date; run bench/make_sample_territory.py", file=sys.stderr
            )
            return 1
        print(f"{args.output} is up to date ({len(COMPANIES)} companies)")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    print(f"wrote {len(COMPANIES)} companies to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
