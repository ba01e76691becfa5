"""Candidate synergies between sites: substitution (one gives what another takes) and pooling.

Candidates come from an index by waste code and category, crossed with a spatial grid whose
cells are as wide as the distance cutoff: a flow is only compared with flows of its own
chapter or category in the nine cells around its site, never with every other flow.
Each candidate carries its reasons in French, with figures.

Scoring (0 to 100): half for code closeness (same List of Waste entry 1, same sub-chapter
0.75, same chapter or same material category 0.45), a quarter for quantity fit (the smaller
quantity over the larger), a quarter for distance (1 at the door, 0 at the cutoff). Shared
words never make a candidate and only break ties: « soude » and « NaOH » share no word.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from synergie.french import number
from synergie.synergies.codes import WasteCode, closeness

EARTH_RADIUS_KM = 6371.0088
CODE_WEIGHTS = {3: 1.0, 2: 0.75, 1: 0.45}
SAME_CATEGORY_WEIGHT = 0.45
_STOP_WORDS = frozenset(
    ["de", "des", "du", "la", "le", "les", "et", "en", "au", "aux", "a", "à", "d", "l", "un", "une", "pour", "par", "sur", "avec", "sans", "ou"]
)


class Direction(StrEnum):
    """Whether a flow enters the site (a need) or leaves it (a waste or a by-product)."""

    INCOMING = "entrant"
    OUTGOING = "sortant"


@dataclass(frozen=True)
class Site:
    """A company site on the map."""

    id: Hashable
    company: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Flow:
    """One material flow of a site, in a common unit (tonnes per month)."""

    id: Hashable
    site_id: Hashable
    direction: Direction
    code: WasteCode | None = None
    category: str | None = None
    words: str = ""
    tonnes_per_month: float | None = None
    outlet: str | None = (
        None  # where an outgoing flow goes today (« recyclage », « enfouissement »)
    )
    accepts_hazardous: bool = False  # an incoming flow whose site may take hazardous waste


class Kind(StrEnum):
    SUBSTITUTION = "substitution"
    POOLING = "mutualisation"


@dataclass(frozen=True)
class Candidate:
    """A proposed synergy: the flows it links (giver first for a substitution), its score and why."""

    kind: Kind
    flow_ids: tuple[Hashable, ...]
    site_ids: tuple[Hashable, ...]
    companies: tuple[str, ...]
    score: float
    km: float  # road km between the two sites (pooling: farthest site from the first)
    reasons: tuple[str, ...]
    tie_break: float = field(default=0.0, compare=False)


@dataclass(frozen=True)
class MatchSettings:
    """The distance cutoff, the road factor and how many candidates to keep per outgoing flow."""

    max_km: float = 50.0
    road_factor: float = 1.3
    per_flow: int = 5


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Return the great-circle distance between two points in km (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def word_set(text: str) -> frozenset[str]:
    """Return the meaningful words of a label, lower-cased and without accents."""
    plain = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return frozenset(
        w for w in re.findall(r"[a-z0-9]+", plain) if len(w) > 2 and w not in _STOP_WORDS
    )


def outlet_kind(text: str | None) -> str:
    """Return an outlet's comparable form: lower case, no accents, single spaces."""
    return " ".join(sorted(word_set(text or "")))


class _Grid:
    """Sites in cells as wide as the great-circle cutoff: neighbours are in the 3 × 3 cells around."""

    def __init__(self, sites: Iterable[Site], cutoff_km: float) -> None:
        sites = list(sites)
        widest = max((abs(s.latitude) for s in sites), default=0.0)
        self.dlat = cutoff_km / 111.19
        # Longitude degrees shrink towards the poles: size cells for the site nearest a pole.
        self.dlon = cutoff_km / (111.19 * max(math.cos(math.radians(min(widest, 89.0))), 0.01))

    def cell(self, site: Site) -> tuple[int, int]:
        return (math.floor(site.latitude / self.dlat), math.floor(site.longitude / self.dlon))

    @staticmethod
    def around(cell: tuple[int, int]) -> Iterable[tuple[int, int]]:
        row, col = cell
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                yield (row + dr, col + dc)


def _keys(flow: Flow) -> list[tuple[str, str]]:
    keys = []
    if flow.code is not None:
        keys.append(("chapter", flow.code.chapter))
    if flow.category:
        keys.append(("category", flow.category))
    return keys


def _tonnes(value: float) -> str:
    return f"{number(value)} t/mois"


def _code_reason(give: Flow, take: Flow) -> tuple[float, str] | None:
    """The code or category closeness of two flows and its reason, or None when they share neither."""
    level = closeness(give.code, take.code) if give.code and take.code else 0
    if level == 3:
        return CODE_WEIGHTS[3], f"même code déchet {give.code}"
    if level == 2:
        assert give.code and take.code
        return CODE_WEIGHTS[2], (
            f"même sous-chapitre {str(give.code)[:5]} (codes {give.code} et {take.code})"
        )
    same_category = bool(give.category) and give.category == take.category
    if same_category:
        return SAME_CATEGORY_WEIGHT, f"même catégorie de matière « {give.category} »"
    if level == 1:
        assert give.code
        return CODE_WEIGHTS[1], f"même chapitre {give.code.chapter} de la liste des déchets"
    return None


def _quantity_reason(give: Flow, take: Flow, giver: str, taker: str) -> tuple[float, str]:
    g, t = give.tonnes_per_month, take.tonnes_per_month
    if not g or not t:
        return 0.5, "quantités à préciser (non renseignées des deux côtés)"
    fit = min(g, t) / max(g, t)
    if g <= t:
        share = f"couvre {number(100 * g / t, digits=0)} % de son besoin"
    else:
        share = f"absorbe {number(100 * t / g, digits=0)} % du gisement"
    return fit, f"{giver} produit {_tonnes(g)}, {taker} en consomme {_tonnes(t)} : {share}"


def _distance_reason(km: float, crow: float, cfg: MatchSettings) -> tuple[float, str]:
    return 1 - km / cfg.max_km, (
        f"à {number(km)} km par la route (estimation : {number(crow)} km à vol d'oiseau "
        f"× {number(cfg.road_factor, digits=2)})"
    )


def substitutions(
    sites: Sequence[Site], flows: Sequence[Flow], cfg: MatchSettings = MatchSettings()
) -> list[Candidate]:
    """Pair each outgoing flow with incoming flows of other sites within reach, best first.

    A hazardous outgoing flow is only proposed to an incoming flow whose site declared it
    may take hazardous waste.
    """
    by_id = {s.id: s for s in sites}
    grid = _Grid(sites, cfg.max_km / cfg.road_factor)
    index: dict[tuple[str, str], dict[tuple[int, int], list[Flow]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for flow in flows:
        if flow.direction == Direction.INCOMING and flow.site_id in by_id:
            for key in _keys(flow):
                index[key][grid.cell(by_id[flow.site_id])].append(flow)
    words: dict[Hashable, frozenset[str]] = {}
    found: list[Candidate] = []
    for give in flows:
        if give.direction != Direction.OUTGOING or give.site_id not in by_id:
            continue
        here = by_id[give.site_id]
        hazardous = give.code is not None and give.code.hazardous
        seen: set[Hashable] = set()
        mine: list[Candidate] = []
        for key in _keys(give):
            cells = index.get(key)
            if not cells:
                continue
            for cell in grid.around(grid.cell(here)):
                for take in cells.get(cell, ()):
                    if take.id in seen or take.site_id == give.site_id:
                        continue
                    seen.add(take.id)
                    if hazardous and not take.accepts_hazardous:
                        continue
                    there = by_id[take.site_id]
                    crow = great_circle_km(
                        here.latitude, here.longitude, there.latitude, there.longitude
                    )
                    km = crow * cfg.road_factor
                    if km > cfg.max_km:
                        continue
                    code = _code_reason(give, take)
                    if code is None:
                        continue
                    fit, quantity = _quantity_reason(give, take, here.company, there.company)
                    near, distance = _distance_reason(km, crow, cfg)
                    score = 100 * (0.5 * code[0] + 0.25 * fit + 0.25 * near)
                    reasons = [code[1], quantity, distance]
                    if give.id not in words:
                        words[give.id] = word_set(give.words)
                    shared = words[give.id] & word_set(take.words)
                    if shared:
                        reasons.append("mots communs : " + ", ".join(sorted(shared)))
                    if hazardous:
                        reasons.append(
                            f"déchet dangereux : {there.company} a déclaré pouvoir le recevoir"
                        )
                    mine.append(
                        Candidate(
                            Kind.SUBSTITUTION, (give.id, take.id), (here.id, there.id),
                            (here.company, there.company), round(score, 1), round(km, 1),
                            tuple(reasons), tie_break=len(shared),
                        )
                    )  # fmt: skip
        mine.sort(key=_rank)
        found.extend(mine[: cfg.per_flow])
    found.sort(key=_rank)
    return found


def _rank(candidate: Candidate) -> tuple[float, float, float]:
    return (-candidate.score, -candidate.tie_break, candidate.km)


def poolings(
    sites: Sequence[Site], flows: Sequence[Flow], cfg: MatchSettings = MatchSettings()
) -> list[Candidate]:
    """Group outgoing flows of the same waste sent to the same kind of outlet by nearby sites.

    One collection instead of several: the largest flow of each group is its centre and the
    others lie within the cutoff of it; a site belongs to one group per waste and outlet.
    """
    by_id = {s.id: s for s in sites}
    grid = _Grid(sites, cfg.max_km / cfg.road_factor)
    buckets: dict[tuple[str, str], list[Flow]] = defaultdict(list)
    for flow in flows:
        if flow.direction != Direction.OUTGOING or flow.site_id not in by_id:
            continue
        what = f"code:{flow.code.code}" if flow.code else f"category:{flow.category or ''}"
        if what != "category:":
            buckets[(what, outlet_kind(flow.outlet))].append(flow)
    found: list[Candidate] = []
    for (_what, outlet), members in buckets.items():
        if len({f.site_id for f in members}) < 2:
            continue
        cells: dict[tuple[int, int], list[Flow]] = defaultdict(list)
        for flow in members:
            cells[grid.cell(by_id[flow.site_id])].append(flow)
        taken: set[Hashable] = set()
        for centre in sorted(members, key=lambda f: -(f.tonnes_per_month or 0)):
            if centre.id in taken:
                continue
            middle = by_id[centre.site_id]
            group: list[tuple[Flow, float]] = [(centre, 0.0)]
            sites_in = {centre.site_id}
            for cell in grid.around(grid.cell(middle)):
                for other in cells.get(cell, ()):
                    if other.id in taken or other.site_id in sites_in:
                        continue
                    there = by_id[other.site_id]
                    km = cfg.road_factor * great_circle_km(
                        middle.latitude, middle.longitude, there.latitude, there.longitude
                    )
                    if km <= cfg.max_km:
                        group.append((other, km))
                        sites_in.add(other.site_id)
            if len(group) < 2:
                continue
            taken.update(f.id for f, _ in group)
            found.append(_pooling(group, by_id, centre, outlet, cfg))
    found.sort(key=_rank)
    return found


def _pooling(
    group: list[tuple[Flow, float]],
    by_id: dict[Hashable, Site],
    centre: Flow,
    outlet: str,
    cfg: MatchSettings,
) -> Candidate:
    n = len(group)
    farthest = max(km for _, km in group)
    what = (
        f"le même déchet ({centre.code})"
        if centre.code
        else f"la même matière (« {centre.category} »)"
    )
    where = f"vers « {centre.outlet} »" if outlet else "vers un exutoire non précisé"
    total = sum(f.tonnes_per_month or 0 for f, _ in group)
    reasons = [
        f"{n} sites envoient {what} {where} : une collecte au lieu de {n}",
        f"ensemble {_tonnes(total)}" if total else "quantités à préciser",
        f"tous à moins de {number(farthest)} km par la route de {by_id[centre.site_id].company}",
    ]
    if centre.code and centre.code.hazardous:
        reasons.append(
            "déchet dangereux : la collecte commune reste confiée à un prestataire autorisé"
        )
    code_weight = CODE_WEIGHTS[3] if centre.code else SAME_CATEGORY_WEIGHT
    score = 100 * (
        0.5 * code_weight + 0.25 * min(1.0, (n - 1) / 4) + 0.25 * (1 - farthest / cfg.max_km)
    )
    return Candidate(
        Kind.POOLING, tuple(f.id for f, _ in group), tuple(f.site_id for f, _ in group),
        tuple(by_id[f.site_id].company for f, _ in group), round(score, 1), round(farthest, 1),
        tuple(reasons), tie_break=total,
    )  # fmt: skip


def candidates(
    sites: Sequence[Site], flows: Sequence[Flow], cfg: MatchSettings = MatchSettings()
) -> list[Candidate]:
    """Every candidate synergy, substitutions and poolings together, best first."""
    return sorted(substitutions(sites, flows, cfg) + poolings(sites, flows, cfg), key=_rank)
