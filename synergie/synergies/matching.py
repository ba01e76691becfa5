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
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache, partial
from typing import Any

import numpy as np

from synergie.french import number
from synergie.synergies.codes import WasteCode, closeness

EARTH_RADIUS_KM = 6371.0088
CODE_WEIGHTS = {3: 1.0, 2: 0.75, 1: 0.45}
SAME_CATEGORY_WEIGHT = 0.45
_STOP_WORDS = frozenset(
    [
        "de",
        "des",
        "du",
        "la",
        "le",
        "les",
        "et",
        "en",
        "au",
        "aux",
        "a",
        "à",
        "d",
        "l",
        "un",
        "une",
        "pour",
        "par",
        "sur",
        "avec",
        "sans",
        "ou",
    ]
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
    # The reasons are written when read: matching thousands of flows writes only those shown.
    explain: Callable[[], tuple[str, ...]] = field(compare=False, repr=False)
    tie_break: float = field(default=0.0, compare=False)

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why, in French, with the figures."""
        return self.explain()


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


@lru_cache(maxsize=65_536)
def word_set(text: str) -> frozenset[str]:
    """Return the meaningful words of a label, lower-cased and without accents."""
    plain = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return frozenset(
        w for w in re.findall(r"[a-z0-9]+", plain) if len(w) > 2 and w not in _STOP_WORDS
    )


@lru_cache(maxsize=4096)
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


def _explain_substitution(
    give: Flow, take: Flow, here: Site, there: Site, km: float, crow: float, cfg: MatchSettings,
    shared: frozenset[str],
) -> tuple[str, ...]:  # fmt: skip
    code = _code_reason(give, take)
    reasons = [
        code[1] if code else "",
        _quantity_reason(give, take, here.company, there.company)[1],
        _distance_reason(km, crow, cfg)[1],
    ]
    if shared:
        reasons.append("mots communs : " + ", ".join(sorted(shared)))
    if give.code is not None and give.code.hazardous:
        reasons.append(f"déchet dangereux : {there.company} a déclaré pouvoir le recevoir")
    return tuple(reasons)


class _Columns:
    """One side's flows as numpy columns: site, position, codes at each level, category, quantity."""

    def __init__(
        self, flows: list[Flow], site_index: dict[Hashable, int], lat: Any, lon: Any,
        categories: dict[str, int],
    ) -> None:  # fmt: skip
        n = len(flows)
        self.site = np.fromiter((site_index[f.site_id] for f in flows), dtype=np.int64, count=n)
        self.lat, self.lon = lat[self.site], lon[self.site]
        code = np.fromiter((int(f.code.code) if f.code else -1 for f in flows), np.int64, n)
        self.code = code
        self.sub = np.where(code >= 0, code // 100, -1)
        self.chapter = np.where(code >= 0, code // 10_000, -1)
        self.category = np.fromiter(
            (categories.setdefault(f.category, len(categories)) if f.category else -1 for f in flows),
            np.int64, n,
        )  # fmt: skip
        self.hazardous = np.fromiter((bool(f.code and f.code.hazardous) for f in flows), bool, n)
        self.accepts = np.fromiter((f.accepts_hazardous for f in flows), bool, n)
        self.quantity = np.fromiter(
            (f.tonnes_per_month if f.tonnes_per_month else np.nan for f in flows), float, n
        )


def _block_scores(
    g: _Columns, gi: Any, t: _Columns, ti: Any, cfg: MatchSettings
) -> tuple[Any, Any, Any]:
    """Scores (−inf where no candidate), road km and great-circle km of givers ``gi`` × takers ``ti``."""
    glat, glon = g.lat[gi][:, None], g.lon[gi][:, None]
    tlat, tlon = t.lat[ti][None, :], t.lon[ti][None, :]
    h = (
        np.sin((tlat - glat) / 2) ** 2
        + np.cos(glat) * np.cos(tlat) * np.sin((tlon - glon) / 2) ** 2
    )
    crow = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(h, 1.0)))
    km = crow * cfg.road_factor
    gc, tc = g.code[gi][:, None], t.code[ti][None, :]
    same_code = (gc == tc) & (gc >= 0)
    same_sub = (g.sub[gi][:, None] == t.sub[ti][None, :]) & (gc >= 0)
    same_chapter = (g.chapter[gi][:, None] == t.chapter[ti][None, :]) & (gc >= 0)
    gcat = g.category[gi][:, None]
    same_category = (gcat == t.category[ti][None, :]) & (gcat >= 0)
    weight = np.where(
        same_code, CODE_WEIGHTS[3],
        np.where(same_sub, CODE_WEIGHTS[2],
                 np.where(same_category | same_chapter, SAME_CATEGORY_WEIGHT, 0.0)),
    )  # fmt: skip
    gq, tq = g.quantity[gi][:, None], t.quantity[ti][None, :]
    with np.errstate(invalid="ignore"):
        fit = np.where(np.isnan(gq) | np.isnan(tq), 0.5, np.fmin(gq, tq) / np.fmax(gq, tq))
    score = 100 * (0.5 * weight + 0.25 * fit + 0.25 * (1 - km / cfg.max_km))
    valid = (
        (weight > 0)
        & (km <= cfg.max_km)
        & (g.site[gi][:, None] != t.site[ti][None, :])
        & (~g.hazardous[gi][:, None] | t.accepts[ti][None, :])
    )
    return np.where(valid, np.round(score, 1), -np.inf), km, crow


def substitutions(
    sites: Sequence[Site], flows: Sequence[Flow], cfg: MatchSettings = MatchSettings()
) -> list[Candidate]:
    """Pair each outgoing flow with incoming flows of other sites within reach, best first.

    Blocks of (chapter or category) × (grid cell and its eight neighbours) are scored as
    numpy matrices; only each giver's best few survive to have their shared words counted
    and their reasons written (when read). A hazardous outgoing flow is only proposed to an
    incoming flow whose site declared it may take hazardous waste.
    """
    by_id = {s.id: s for s in sites}
    site_list = list(by_id.values())
    site_index = {s.id: n for n, s in enumerate(site_list)}
    lat = np.radians(np.array([s.latitude for s in site_list], dtype=float))
    lon = np.radians(np.array([s.longitude for s in site_list], dtype=float))
    grid = _Grid(site_list, cfg.max_km / cfg.road_factor)
    cell_of = [grid.cell(s) for s in site_list]
    givers = [f for f in flows if f.direction == Direction.OUTGOING and f.site_id in by_id]
    takers = [f for f in flows if f.direction == Direction.INCOMING and f.site_id in by_id]
    if not givers or not takers:
        return []
    categories: dict[str, int] = {}
    g = _Columns(givers, site_index, lat, lon, categories)
    t = _Columns(takers, site_index, lat, lon, categories)
    # The index: for each chapter and each category, the flows of each grid cell.
    g_index: dict[tuple[str, str], dict[tuple[int, int], list[int]]] = defaultdict(
        lambda: defaultdict(list)
    )
    t_index: dict[tuple[str, str], dict[tuple[int, int], list[int]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for side, index in ((givers, g_index), (takers, t_index)):
        for n, flow in enumerate(side):
            cell = cell_of[site_index[flow.site_id]]
            for key in _keys(flow):
                index[key][cell].append(n)
    keep = cfg.per_flow + 3  # a little more than kept, so that ties reach the word tie-break
    parts: list[tuple[Any, ...]] = []
    for key, giver_cells in g_index.items():
        taker_cells = t_index.get(key)
        if not taker_cells:
            continue
        t_arrays = {c: np.array(v, dtype=np.int64) for c, v in taker_cells.items()}
        for cell, members in giver_cells.items():
            near = [t_arrays[c] for c in grid.around(cell) if c in t_arrays]
            if not near:
                continue
            ti = np.concatenate(near)
            gi = np.array(members, dtype=np.int64)
            score, km, crow = _block_scores(g, gi, t, ti, cfg)
            if score.shape[1] > keep:
                top = np.argpartition(-score, keep - 1, axis=1)[:, :keep]
            else:
                top = np.broadcast_to(np.arange(score.shape[1]), score.shape)
            rows = np.arange(len(gi))[:, None]
            chosen = score[rows, top]
            r, c = np.nonzero(np.isfinite(chosen))
            columns = top[r, c]
            parts.append((gi[r], ti[columns], chosen[r, c], km[r, columns], crow[r, columns]))
    if not parts:
        return []
    g_all, t_all, score_all, km_all, crow_all = (
        np.concatenate(p) for p in zip(*parts, strict=True)
    )
    # Best first within each giver; a pair met through both its chapter and its category once.
    order = np.lexsort((km_all, -score_all, t_all, g_all))
    g_all, t_all, score_all, km_all, crow_all = (
        a[order] for a in (g_all, t_all, score_all, km_all, crow_all)
    )
    first = np.ones(len(g_all), dtype=bool)
    first[1:] = (g_all[1:] != g_all[:-1]) | (t_all[1:] != t_all[:-1])
    g_all, t_all, score_all, km_all, crow_all = (
        a[first] for a in (g_all, t_all, score_all, km_all, crow_all)
    )
    order = np.lexsort((km_all, -score_all, g_all))
    found: list[Candidate] = []
    current = -1
    mine: list[tuple[float, float, int, float, int]] = []
    rows_ = zip(
        g_all[order].tolist(), t_all[order].tolist(), score_all[order].tolist(),
        km_all[order].tolist(), crow_all[order].tolist(), strict=True,
    )  # fmt: skip
    for gi_, ti_, score_, km_, crow_ in rows_:
        if gi_ != current:
            found.extend(_best_of(mine, givers, takers, by_id, cfg))
            current, mine = gi_, []
        mine.append((score_, km_, ti_, crow_, gi_))
    found.extend(_best_of(mine, givers, takers, by_id, cfg))
    found.sort(key=_rank)
    return found


def _best_of(
    options: list[tuple[float, float, int, float, int]],
    givers: list[Flow],
    takers: list[Flow],
    by_id: dict[Hashable, Site],
    cfg: MatchSettings,
) -> list[Candidate]:
    """One giver's kept candidates: best score, then most shared words, then nearest."""
    if not options:
        return []
    give = givers[options[0][4]]
    here = by_id[give.site_id]
    mine = []
    for score_, km_, ti_, crow_, _ in options:
        take = takers[ti_]
        shared = (
            word_set(give.words) & word_set(take.words)
            if give.words and take.words
            else frozenset()
        )
        mine.append((-score_, -len(shared), km_, ti_, crow_, shared))
    mine.sort(key=lambda m: m[:4])
    out = []
    for neg_score, neg_words, km_, ti_, crow_, shared in mine[: cfg.per_flow]:
        take = takers[ti_]
        there = by_id[take.site_id]
        out.append(
            Candidate(
                Kind.SUBSTITUTION, (give.id, take.id), (here.id, there.id),
                (here.company, there.company), -neg_score, round(km_, 1),
                explain=partial(_explain_substitution, give, take, here, there, km_, crow_,
                                cfg, shared),
                tie_break=-neg_words,
            )
        )  # fmt: skip
    return out


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
    total = sum(f.tonnes_per_month or 0 for f, _ in group)
    code_weight = CODE_WEIGHTS[3] if centre.code else SAME_CATEGORY_WEIGHT
    score = 100 * (
        0.5 * code_weight + 0.25 * min(1.0, (n - 1) / 4) + 0.25 * (1 - farthest / cfg.max_km)
    )
    return Candidate(
        Kind.POOLING, tuple(f.id for f, _ in group), tuple(f.site_id for f, _ in group),
        tuple(by_id[f.site_id].company for f, _ in group), round(score, 1), round(farthest, 1),
        explain=partial(_explain_pooling, n, centre, outlet, total, farthest, by_id),
        tie_break=total,
    )  # fmt: skip


def _explain_pooling(
    n: int, centre: Flow, outlet: str, total: float, farthest: float, by_id: dict[Hashable, Site]
) -> tuple[str, ...]:
    what = (
        f"le même déchet ({centre.code})"
        if centre.code
        else f"la même matière (« {centre.category} »)"
    )
    where = f"vers « {centre.outlet} »" if outlet else "vers un exutoire non précisé"
    reasons = [
        f"{n} sites envoient {what} {where} : une collecte au lieu de {n}",
        f"ensemble {_tonnes(total)}" if total else "quantités à préciser",
        f"tous à moins de {number(farthest)} km par la route de {by_id[centre.site_id].company}",
    ]
    if centre.code and centre.code.hazardous:
        reasons.append(
            "déchet dangereux : la collecte commune reste confiée à un prestataire autorisé"
        )
    return tuple(reasons)


def candidates(
    sites: Sequence[Site], flows: Sequence[Flow], cfg: MatchSettings = MatchSettings()
) -> list[Candidate]:
    """Every candidate synergy, substitutions and poolings together, best first."""
    return sorted(substitutions(sites, flows, cfg) + poolings(sites, flows, cfg), key=_rank)
