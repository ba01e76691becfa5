"""Matching benchmark: 5,000 then 10,000 companies with 10 flows each.

    python bench/synergies_bench.py [--companies 5000] [--flows 10] [--max-km 50]

Companies are spread at the same density both times (about one company per 30 km², the
density of a dense French département's listing), over a territory whose area grows with the
count: a region, then two. At a fixed density the work per flow is bounded by what lies
within the cutoff, so the time should grow with the number of flows (goal: ratio <= 2.5x, and
under 10 s for 10,000 companies). Codes are drawn from ~120 List of Waste entries in 12
chapters, half outgoing and half incoming, 5 % hazardous, 10 % of takers declaring they may
take hazardous waste. Each time is the best of 3 runs; the CPU time beside it is what a
shared machine's load does not inflate.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synergie.synergies.codes import WasteCode  # noqa: E402
from synergie.synergies.matching import (  # noqa: E402
    Direction,
    Flow,
    MatchSettings,
    Site,
    candidates,
)

KM2_PER_COMPANY = 30.0
REPEATS = 3
CHAPTERS = ["02", "03", "07", "08", "10", "12", "13", "15", "16", "17", "19", "20"]
CATEGORIES = [
    "bois",
    "papier-carton",
    "plastique",
    "métaux",
    "organique",
    "huiles",
    "verre",
    "minéraux",
]
OUTLETS = ["Recyclage", "Enfouissement", "Incinération", "Déchèterie", "Compostage"]


def territory(
    companies: int, flows_per_company: int, seed: int = 12
) -> tuple[list[Site], list[Flow]]:
    """Sites on a square of France-like latitude at constant density, with their flows."""
    rng = random.Random(seed)
    side_km = math.sqrt(companies * KM2_PER_COMPANY)
    lat0, lon0 = 46.0, 3.0
    dlat = side_km / 111.19
    dlon = side_km / (111.19 * math.cos(math.radians(lat0 + dlat / 2)))
    codes = [
        WasteCode(f"{ch}{sub:02d}{entry:02d}", hazardous=rng.random() < 0.05)
        for ch in CHAPTERS
        for sub in (1, 2, 3)
        for entry in (1, 2, 3)
    ]
    sites, flows = [], []
    for n in range(companies):
        site = Site(n, f"Entreprise {n}", lat0 + rng.random() * dlat, lon0 + rng.random() * dlon)
        sites.append(site)
        for k in range(flows_per_company):
            code = rng.choice(codes)
            outgoing = rng.random() < 0.5
            flows.append(
                Flow(
                    id=n * flows_per_company + k, site_id=n,
                    direction=Direction.OUTGOING if outgoing else Direction.INCOMING,
                    code=code, category=CATEGORIES[int(code.chapter) % len(CATEGORIES)],
                    words=f"matière {code.code}", tonnes_per_month=rng.uniform(0.1, 20),
                    outlet=rng.choice(OUTLETS) if outgoing else None,
                    accepts_hazardous=not outgoing and rng.random() < 0.1,
                )
            )  # fmt: skip
    return sites, flows


def timed(companies: int, flows_per_company: int, cfg: MatchSettings) -> tuple[float, float, int]:
    """Best wall time, best CPU time (this process: what a shared, loaded machine does not
    inflate) and the number of candidates."""
    sites, flows = territory(companies, flows_per_company)
    best, best_cpu, found = math.inf, math.inf, 0
    for _ in range(REPEATS):
        started, cpu = time.perf_counter(), time.process_time()
        found = len(candidates(sites, flows, cfg))
        best = min(best, time.perf_counter() - started)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best, best_cpu, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=5000)
    parser.add_argument("--flows", type=int, default=10)
    parser.add_argument("--max-km", type=float, default=50.0)
    args = parser.parse_args()
    cfg = MatchSettings(max_km=args.max_km)
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    small, small_cpu, found_small = timed(args.companies, args.flows, cfg)
    print(
        f"{args.companies:>6} companies × {args.flows} flows: {small:6.2f} s "
        f"(CPU {small_cpu:.2f} s), {found_small} candidates"
    )
    big, big_cpu, found_big = timed(2 * args.companies, args.flows, cfg)
    print(
        f"{2 * args.companies:>6} companies × {args.flows} flows: {big:6.2f} s "
        f"(CPU {big_cpu:.2f} s), {found_big} candidates"
    )
    print(
        f"ratio: {big / small:.2f}x (CPU {big_cpu / small_cpu:.2f}x; goal <= 2.5x); "
        f"{2 * args.companies} companies in {big:.2f} s (CPU {big_cpu:.2f} s; goal < 10 s)"
    )


if __name__ == "__main__":
    main()
