"""Candidate synergies between sites: substitution (one gives what another takes) and pooling.

Candidates come from an index by waste code and category, crossed with a spatial grid whose
cells are as wide as the distance cutoff: a flow is only compared with flows of its family
(the chapters and categories that flows tie together), or of its chapter then of its
category, whichever compares fewer pairs, in the nine cells around its site, never with
every other flow. Each candidate carries its reasons in French, with figures, written
only when read: the work is done on numpy columns, and a ``Ranked`` list builds a candidate
when it is looked at.

Scoring (0 to 100): half for code closeness (same List of Waste entry 1, same sub-chapter
0.75, same chapter or same material category 0.45), a quarter for quantity fit (the smaller
quantity over the larger), a quarter for distance (1 at the door, 0 at the cutoff). Shared
words never make a candidate and only break ties: « soude » and « NaOH » share no word.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache, partial
from typing import Any, overload

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
        return 0.5, "quantités à comparer à la main (pas données en tonnes des deux côtés)"
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
) -> tuple[str, ...]:  # fmt: skip
    shared = word_set(give.words) & word_set(take.words)
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


class Ranked(Sequence[Candidate]):
    """Candidates best first (score, then tie-break, then km), each built only when read.

    Matching ten thousand companies keeps a quarter of a million candidates; a person reads
    the first thirty. The ranking is done on numpy columns; ``build(i)`` makes the i-th
    candidate of the unsorted columns.
    """

    def __init__(self, score: Any, tie: Any, km: Any, build: Callable[[int], Candidate]) -> None:
        self._score = np.asarray(score, dtype=float)
        self._tie = np.asarray(tie, dtype=float)
        self._km = np.asarray(km, dtype=float)
        self._build = build
        self._sorted: Any = None  # ranked on first read: a merged part is never ranked alone

    @property
    def _order(self) -> Any:
        if self._sorted is None:
            self._sorted = np.lexsort((self._km, -self._tie, -self._score))
        return self._sorted

    @classmethod
    def merge(cls, *parts: Ranked) -> Ranked:
        """One ranking of several."""
        starts = np.cumsum([0] + [len(p) for p in parts])

        def build(i: int) -> Candidate:
            n = int(np.searchsorted(starts, i, side="right")) - 1
            return parts[n]._build(i - int(starts[n]))

        return cls(
            np.concatenate([p._score for p in parts]) if parts else [],
            np.concatenate([p._tie for p in parts]) if parts else [],
            np.concatenate([p._km for p in parts]) if parts else [],
            build,
        )

    def __len__(self) -> int:
        return len(self._score)

    @overload
    def __getitem__(self, index: int) -> Candidate: ...

    @overload
    def __getitem__(self, index: slice) -> list[Candidate]: ...

    def __getitem__(self, index: int | slice) -> Candidate | list[Candidate]:
        if isinstance(index, slice):
            return [self._build(int(i)) for i in self._order[index]]
        return self._build(int(self._order[index]))

    def __iter__(self) -> Iterator[Candidate]:
        return (self._build(i) for i in self._order.tolist())


_NOTHING = Ranked([], [], [], lambda i: (_ for _ in ()).throw(IndexError(i)))


class _Territory:
    """Sites as numpy columns: unit vectors (great-circle distances by dot product) and grid cells."""

    def __init__(self, sites: Sequence[Site], cutoff_km: float) -> None:
        self.by_id = {s.id: s for s in sites}
        self.sites = list(self.by_id.values())
        self.index = {s.id: n for n, s in enumerate(self.sites)}
        lat_deg = np.array([s.latitude for s in self.sites], dtype=float)
        lon_deg = np.array([s.longitude for s in self.sites], dtype=float)
        lat, lon = np.radians(lat_deg), np.radians(lon_deg)
        self.xyz = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], 1)
        widest = float(np.abs(lat_deg).max()) if len(lat_deg) else 0.0
        dlat = cutoff_km / 111.19
        # Longitude degrees shrink towards the poles: size cells for the site nearest a pole.
        dlon = cutoff_km / (111.19 * max(math.cos(math.radians(min(widest, 89.0))), 0.01))
        self.row = np.floor(lat_deg / dlat).astype(np.int64)
        self.col = np.floor(lon_deg / dlon).astype(np.int64)


def _crow_km(dot: Any, factor: float = 1.0) -> Any:
    """Great-circle km (× ``factor``) from dot products of unit vectors; ``dot`` is overwritten."""
    # Half the chord squared is (1 − dot) / 2: the haversine, without its sines and cosines.
    h = np.multiply(dot, -0.5, out=dot)
    h += 0.5
    np.clip(h, 0.0, 1.0, out=h)
    np.sqrt(h, out=h)
    np.arcsin(h, out=h)
    h *= 2 * EARTH_RADIUS_KM * factor
    return h


def _neighbour_pairs(keys: Any, rows: Any, cols: Any) -> tuple[Any, Any]:
    """Every (i, j), i != j, with the same key and cells at most one apart (both ways)."""
    order = np.lexsort((cols, rows, keys))
    k, r, c = keys[order], rows[order], cols[order]
    left, right = [], []
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            # Find, for each flow, the run of flows sitting in the cell (row + dr, col + dc).
            lo = _search(k, r, c, k, r + dr, c + dc, "left")
            hi = _search(k, r, c, k, r + dr, c + dc, "right")
            counts = hi - lo
            if not counts.any():
                continue
            i = np.repeat(np.arange(len(k)), counts)
            offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            j = np.repeat(lo, counts) + offsets
            keep = i != j
            left.append(order[i[keep]])
            right.append(order[j[keep]])
    if not left:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(left), np.concatenate(right)


def _search(k: Any, r: Any, c: Any, qk: Any, qr: Any, qc: Any, side: str) -> Any:
    """searchsorted over (key, row, col) sorted lexicographically, as one int64 each."""
    base_r, base_c = min(int(r.min()), int(qr.min())), min(int(c.min()), int(qc.min()))
    span_r = max(int(r.max()), int(qr.max())) - base_r + 1
    span_c = max(int(c.max()), int(qc.max())) - base_c + 1
    packed = (k * span_r + (r - base_r)) * span_c + (c - base_c)
    query = (qk * span_r + (qr - base_r)) * span_c + (qc - base_c)
    return np.searchsorted(packed, query, side=side)  # type: ignore[call-overload]


def _families(chapter: Any, category: Any) -> Any:
    """Each flow's family: chapters and categories joined whenever one flow carries both.

    Two flows can only match if they share a chapter or a category, so they share a family:
    comparing within families meets each pair once (an index by chapter and another by
    category would meet most pairs twice).
    """
    parent: dict[tuple[str, int], tuple[str, int]] = {}

    def find(x: tuple[str, int]) -> tuple[str, int]:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    both = (chapter >= 0) & (category >= 0)
    for ch, cat in np.unique(np.stack([chapter[both], category[both]], 1), axis=0).tolist():
        a, b = find(("chapter", ch)), find(("category", cat))
        if a != b:
            parent[a] = b
    roots: dict[tuple[str, int], int] = {}

    def lookup(kind: str, values: Any) -> Any:
        present = np.unique(values[values >= 0])
        table = np.full(int(present.max()) + 1 if len(present) else 1, -1, dtype=np.int64)
        for v in present.tolist():
            table[v] = roots.setdefault(find((kind, v)), len(roots))
        return np.where(values >= 0, table[np.maximum(values, 0)], -1)

    by_chapter, by_category = lookup("chapter", chapter), lookup("category", category)
    return np.where(chapter >= 0, by_chapter, by_category)


class _Flows:
    """The flows as numpy columns; a giver's missing code or category never equals a taker's."""

    def __init__(self, flows: Sequence[Flow], where: _Territory) -> None:
        index = where.index
        self.flows = fl = [f for f in flows if f.site_id in index]
        self.site = np.array([index[f.site_id] for f in fl], dtype=np.int64)
        self.giver = np.array([f.direction == Direction.OUTGOING for f in fl], dtype=bool)
        wastes = [f.code for f in fl]
        code = np.array([int(c.code) if c else -1 for c in wastes], dtype=np.int64)
        categories: dict[str | None, int] = {None: -1, "": -1}
        category = np.array(
            [categories.setdefault(f.category, len(categories) - 2) for f in fl], dtype=np.int64
        )
        # -1 on the giving side, -2 on the taking side: two missing values never match.
        missing = np.where(self.giver, -1, -2)
        has = code >= 0
        self.code = np.where(has, code, missing)
        self.sub = np.where(has, code // 100, missing)
        self.chapter = np.where(has, code // 10_000, missing)
        self.category = np.where(category >= 0, category, missing)
        self.family = _families(np.where(has, code // 10_000, -1), category)
        self.hazardous = np.array([bool(c and c.hazardous) for c in wastes], dtype=bool)
        self.accepts = np.array([f.accepts_hazardous for f in fl], dtype=bool)
        quantity = np.array([f.tonnes_per_month or np.nan for f in fl], dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.log_quantity = np.log(np.where(quantity > 0, quantity, np.nan))
        self.unknown_quantity = np.isnan(self.log_quantity)
        words: dict[str, int] = {}
        self.words = np.array([words.setdefault(f.words, len(words)) for f in fl], dtype=np.int64)
        self.word_texts = list(words)


def _shared_word_counts(g_words: Any, t_words: Any, texts: list[str]) -> Any:
    """How many words each (giver, taker) pair's labels share, counted once per distinct pair."""
    if not len(g_words):
        return np.zeros(0)
    pairs = g_words * len(texts) + t_words
    unique, inverse = np.unique(pairs, return_inverse=True)
    counts = np.array(
        [len(word_set(texts[p // len(texts)]) & word_set(texts[p % len(texts)]))
         for p in unique.tolist()],
        dtype=float,
    )  # fmt: skip
    return counts[inverse]


def _groups(packed: Any, members: Any) -> dict[int, Any]:
    """The members by their packed (key, cell)."""
    if not len(members):
        return {}
    keys = packed[members]
    order = np.argsort(keys, kind="stable")
    unique, first = np.unique(keys[order], return_index=True)
    return dict(zip(unique.tolist(), np.split(members[order], first[1:]), strict=True))


def _pair_count(key: Any, giver: Any) -> int:
    """How many (giver, taker) pairs share a key, territory-wide: the cost of indexing by it."""
    valid = key >= 0
    size = int(key.max()) + 1 if valid.any() else 1
    g = np.bincount(key[valid & giver], minlength=size)
    t = np.bincount(key[valid & ~giver], minlength=size)
    return int(np.dot(g, t))


def _passes(f: _Flows) -> list[tuple[Any, bool]]:
    """The keys to index flows by, each with whether pairs of the same chapter are left out.

    Either one pass by family (each pair met once), or, when the families have merged into
    a few large ones (real inventories tie most categories through chapters 15 and 20), a
    pass by chapter then one by category that skips the pairs the first already met:
    whichever compares fewer pairs.
    """
    chapter = np.where(f.chapter >= 0, f.chapter, -1)
    category = np.where(f.category >= 0, f.category, -1)
    by_family = _pair_count(f.family, f.giver)
    by_keys = _pair_count(chapter, f.giver) + _pair_count(category, f.giver)
    if by_family <= by_keys:
        return [(f.family, False)]
    return [(chapter, False), (category, True)]


def substitutions(
    sites: Sequence[Site], flows: Sequence[Flow], cfg: MatchSettings = MatchSettings()
) -> Ranked:
    """Pair each outgoing flow with incoming flows of other sites within reach, best first.

    Blocks of (family, or chapter then category: ``_passes``) × (grid cell and its eight
    neighbours) are scored as numpy matrices;
    each giver's best few (argpartition) are ranked by score, shared words and km, and its
    ``per_flow`` first kept. A hazardous outgoing flow is only proposed to an incoming flow
    whose site declared it may take hazardous waste.
    """
    where = _Territory(sites, cfg.max_km / cfg.road_factor)
    f = _Flows(flows, where)
    givers = np.nonzero(f.giver & (f.family >= 0))[0]
    takers = np.nonzero(~f.giver & (f.family >= 0))[0]
    if not len(givers) or not len(takers):
        return _NOTHING
    keep = cfg.per_flow + 3  # a little more than kept, so that ties reach the word tie-break
    rows, cols = where.row[f.site], where.col[f.site]
    # One int64 per (key, cell): keys × rows × columns, with a spare row and column on each
    # side so that neighbours' keys never wrap.
    r0, c0 = int(rows.min()) - 1, int(cols.min()) - 1
    n_r, n_c = int(rows.max()) - r0 + 2, int(cols.max()) - c0 + 2
    around = [dr * n_c + dc for dr in (-1, 0, 1) for dc in (-1, 0, 1)]
    xyz = where.xyz[f.site]
    parts: list[tuple[Any, Any, Any]] = []
    for key, skip_same_chapter in _passes(f):
        packed = (key * n_r + (rows - r0)) * n_c + (cols - c0)
        g_groups = _groups(packed, np.nonzero(f.giver & (key >= 0))[0])
        t_groups = _groups(packed, np.nonzero(~f.giver & (key >= 0))[0])
        for cell_key, gi in g_groups.items():
            near = [t_groups[cell_key + d] for d in around if cell_key + d in t_groups]
            if not near:
                continue
            ti = np.concatenate(near)
            score = _block_scores(f, gi, ti, xyz, cfg, skip_same_chapter=skip_same_chapter)
            if score.shape[1] > keep:
                # The ``keep`` largest end up on the right (no negated copy of the block).
                cut = score.shape[1] - keep
                top = np.argpartition(score, cut, axis=1)[:, cut:]
                chosen = np.take_along_axis(score, top, 1)
            else:
                top, chosen = np.broadcast_to(np.arange(score.shape[1]), score.shape), score
            r, c = np.nonzero(np.isfinite(chosen))
            parts.append((gi[r], ti[top[r, c]], chosen[r, c]))
    if not parts:
        return _NOTHING
    g_all, t_all, score_all = (np.concatenate(p) for p in zip(*parts, strict=True))
    crow = _crow_km(np.einsum("ij,ij->i", xyz[g_all], xyz[t_all]))
    km = crow * cfg.road_factor
    words = _shared_word_counts(f.words[g_all], f.words[t_all], f.word_texts)
    # Each giver's kept: best score, then most shared words, then nearest.
    order = np.lexsort((km, -words, -score_all, g_all))
    g_sorted = g_all[order]
    first = np.r_[0, np.nonzero(g_sorted[1:] != g_sorted[:-1])[0] + 1]
    rank = np.arange(len(order)) - np.repeat(first, np.diff(np.r_[first, len(order)]))
    kept = order[rank < cfg.per_flow]
    g_k, t_k, s_k, km_k, crow_k, w_k = (a[kept] for a in (g_all, t_all, score_all, km, crow, words))

    def build(i: int) -> Candidate:
        give, take = f.flows[int(g_k[i])], f.flows[int(t_k[i])]
        here, there = where.by_id[give.site_id], where.by_id[take.site_id]
        km_, crow_ = float(km_k[i]), float(crow_k[i])
        return Candidate(
            Kind.SUBSTITUTION, (give.id, take.id), (here.id, there.id),
            (here.company, there.company), float(s_k[i]), round(km_, 1),
            explain=partial(_explain_substitution, give, take, here, there, km_, crow_, cfg),
            tie_break=float(w_k[i]),
        )  # fmt: skip

    return Ranked(s_k, w_k, np.round(km_k, 1), build)


def _block_scores(
    f: _Flows, gi: Any, ti: Any, xyz: Any, cfg: MatchSettings, *, skip_same_chapter: bool = False
) -> Any:
    """Scores of givers ``gi`` × takers ``ti``, −inf where no candidate.

    score = 100 × (0.5 × code weight + 0.25 × quantity fit + 0.25 × (1 − km / cutoff)), built
    in place: this is the inner loop of matching a whole region.
    """
    km = _crow_km(xyz[gi] @ xyz[ti].T, cfg.road_factor)
    broad = f.chapter[gi][:, None] == f.chapter[ti]
    broad |= f.category[gi][:, None] == f.category[ti]
    # min(g, t) / max(g, t) = exp(−|ln g − ln t|); unknown on either side: 0.5.
    score = np.subtract(f.log_quantity[gi][:, None], f.log_quantity[ti])
    np.abs(score, out=score)
    np.negative(score, out=score)
    np.exp(score, out=score)
    if f.unknown_quantity[gi].any() or f.unknown_quantity[ti].any():
        np.nan_to_num(score, copy=False, nan=0.5)
    score *= 25
    score -= km * (25 / cfg.max_km)
    score += 25
    # Code weights, × 50: same chapter or category 0.45, same sub-chapter 0.75, same code 1.
    np.add(score, 50 * SAME_CATEGORY_WEIGHT, out=score, where=broad)
    np.add(score, 50 * (CODE_WEIGHTS[2] - SAME_CATEGORY_WEIGHT), out=score,
           where=f.sub[gi][:, None] == f.sub[ti])  # fmt: skip
    np.add(score, 50 * (CODE_WEIGHTS[3] - CODE_WEIGHTS[2]), out=score,
           where=f.code[gi][:, None] == f.code[ti])  # fmt: skip
    np.round(score, 1, out=score)
    invalid = ~broad
    invalid |= km > cfg.max_km
    invalid |= f.site[gi][:, None] == f.site[ti]
    if f.hazardous[gi].any():
        invalid |= f.hazardous[gi][:, None] & ~f.accepts[ti]
    if skip_same_chapter:  # met by the pass by chapter
        invalid |= f.chapter[gi][:, None] == f.chapter[ti]
    score[invalid] = -np.inf
    return score


def poolings(
    sites: Sequence[Site], flows: Sequence[Flow], cfg: MatchSettings = MatchSettings()
) -> Ranked:
    """Group outgoing flows of the same waste sent to the same kind of outlet by nearby sites.

    One collection instead of several: the largest flow of each group is its centre and the
    others lie within the cutoff of it (nearest first, one flow per site); a flow belongs to
    one group. Neighbours come from the grid in one vectorised pass; only the greedy grouping
    walks the flows in Python.
    """
    where = _Territory(sites, cfg.max_km / cfg.road_factor)
    out = [f for f in flows if f.direction == Direction.OUTGOING and f.site_id in where.index]
    buckets: dict[tuple[str, str], int] = {}
    bucket = np.full(len(out), -1, dtype=np.int64)
    for n, flow in enumerate(out):
        what = f"code:{flow.code.code}" if flow.code else f"category:{flow.category or ''}"
        if what != "category:":
            bucket[n] = buckets.setdefault((what, outlet_kind(flow.outlet)), len(buckets))
    members = np.nonzero(bucket >= 0)[0]
    if len(members) < 2:
        return _NOTHING
    site = np.fromiter((where.index[f.site_id] for f in out), np.int64, len(out))
    i, j = _neighbour_pairs(bucket[members], where.row[site[members]], where.col[site[members]])
    i, j = members[i], members[j]
    km = _crow_km(np.einsum("ij,ij->i", where.xyz[site[i]], where.xyz[site[j]])) * cfg.road_factor
    near = (km <= cfg.max_km) & (site[i] != site[j])
    i, j, km = i[near], j[near], km[near]
    order = np.lexsort((j, km, i))  # each flow's neighbours, nearest first
    i, j, km = i[order], j[order], km[order]
    starts = np.searchsorted(i, np.arange(len(out) + 1)).tolist()
    j_list, km_list, site_list = j.tolist(), km.tolist(), site.tolist()
    tonnes = [f.tonnes_per_month or 0 for f in out]
    taken = bytearray(len(out))
    groups: list[list[tuple[int, float]]] = []
    # Centres: largest flow first within each bucket (buckets are independent).
    by_size = np.lexsort((members, -np.array(tonnes)[members], bucket[members]))
    for centre in members[by_size].tolist():
        if taken[centre] or starts[centre] == starts[centre + 1]:
            continue
        group, sites_in = [(centre, 0.0)], {site_list[centre]}
        for k in range(starts[centre], starts[centre + 1]):
            other = j_list[k]
            if not taken[other] and site_list[other] not in sites_in:
                group.append((other, km_list[k]))
                sites_in.add(site_list[other])
        if len(group) < 2:
            continue
        for member, _ in group:
            taken[member] = 1
        groups.append(group)
    if not groups:
        return _NOTHING
    sizes = np.array([len(g) for g in groups], dtype=float)
    farthest = np.array([max(km for _, km in g) for g in groups])
    total = np.array([sum(tonnes[n] for n, _ in g) for g in groups])
    coded = np.array([out[g[0][0]].code is not None for g in groups])
    code_weight = np.where(coded, CODE_WEIGHTS[3], SAME_CATEGORY_WEIGHT)
    score = np.round(
        100 * (0.5 * code_weight + 0.25 * np.minimum(1.0, (sizes - 1) / 4)
               + 0.25 * (1 - farthest / cfg.max_km)),
        1,
    )  # fmt: skip

    def build(n: int) -> Candidate:
        group = [(out[m], km) for m, km in groups[n]]
        centre = group[0][0]
        return Candidate(
            Kind.POOLING, tuple(f.id for f, _ in group), tuple(f.site_id for f, _ in group),
            tuple(where.by_id[f.site_id].company for f, _ in group), float(score[n]),
            round(float(farthest[n]), 1),
            explain=partial(_explain_pooling, len(group), centre, outlet_kind(centre.outlet),
                            float(total[n]), float(farthest[n]), where.by_id),
            tie_break=float(total[n]),
        )  # fmt: skip

    return Ranked(score, total, np.round(farthest, 1), build)


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
) -> Ranked:
    """Every candidate synergy, substitutions and poolings together, best first."""
    return Ranked.merge(substitutions(sites, flows, cfg), poolings(sites, flows, cfg))
