"""Listing import benchmark: our streaming import against a plain csv.reader loop, side by side.

    python bench/import_bench.py [--rows 1000000] [--orm-rows 20000]

Generates a SIRENE StockEtablissement-shaped file, keeps ~1% of its rows by commune, and
prints rows/s of each contender, their ratio, our peak RSS, and bulk loading against ORM
``add_all``. Each contender runs in a fresh child process so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COMMUNES = ("21464", "21295")  # Nuits-Saint-Georges, Gevrey-Chambertin


def _peak_rss_mb() -> float:
    # VmHWM is this process's own high-water mark; ru_maxrss would carry the parent's over exec.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def baseline_csv_reader(path: str) -> dict[str, float]:
    """The plain loop: csv.reader parses every row, then the row is filtered."""
    started = time.perf_counter()
    kept = rows = 0
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        commune, state = (
            header.index("codeCommuneEtablissement"),
            header.index("etatAdministratifEtablissement"),
        )
        wanted = set(COMMUNES)
        for row in reader:
            rows += 1
            if row[commune] in wanted and row[state] == "A":
                kept += 1
    return {
        "seconds": time.perf_counter() - started,
        "rows": rows,
        "kept": kept,
        "rss": _peak_rss_mb(),
    }


def ours(path: str, db_dir: str) -> dict[str, float]:
    """Synergie's import, filters on, into a fresh SQLite database."""
    from models.db import make_engine, upgrade_database
    from synergie.listing.loader import import_listing
    from synergie.listing.reading import ListingFilter

    url = f"sqlite:///{db_dir}/bench.db"
    upgrade_database(url)
    engine = make_engine(url)
    started = time.perf_counter()
    report = import_listing(
        engine=engine, path=Path(path), listing_filter=ListingFilter(communes=frozenset(COMMUNES)),
        rejects_dir=Path(db_dir),
    )  # fmt: skip
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": report.rows_read, "kept": report.created, "rejected": report.rejected,
            "rss": _peak_rss_mb()}  # fmt: skip


def bulk_vs_orm(rows: int, db_dir: str) -> dict[str, float]:
    """The same validated rows loaded by our Core upsert batches and by ORM add_all."""
    from datetime import UTC, datetime

    from sqlmodel import Session
    from stdnum import luhn

    from models import Company, Source
    from models.db import make_engine, upgrade_database
    from synergie.listing.loader import BATCH_SIZE, ListingLoader
    from synergie.listing.rows import ListingRow, name_key

    def siret(n: int) -> str:
        siren = f"{10000000 + n:08d}"
        siren += luhn.calc_check_digit(siren)
        body = siren + "0001"
        return body + luhn.calc_check_digit(body)

    data = [
        {"siret": siret(n), "name": f"Entreprise {n}", "name_key": name_key(f"Entreprise {n}"),
         "naf_code": "16.23Z", "staff_band": "11", "address": f"{n} rue du Bench", "postcode": "21700",
         "commune": "Nuits-Saint-Georges", "commune_code": "21464", "latitude": None, "longitude": None}
        for n in range(rows)
    ]  # fmt: skip
    now = datetime.now(UTC)
    results = {}
    for label in ("bulk", "orm"):
        url = f"sqlite:///{db_dir}/{label}.db"
        upgrade_database(url)
        engine = make_engine(url)
        started = time.perf_counter()
        if label == "bulk":
            with engine.begin() as connection:
                loader = ListingLoader(connection, source=Source.SIRENE, now=now, dry_run=False)
                for start in range(0, rows, BATCH_SIZE):
                    loader.load(
                        [
                            ListingRow(0, company, None)
                            for company in data[start : start + BATCH_SIZE]
                        ]
                    )
        else:
            with Session(engine) as session:
                session.add_all(Company(**company, source=Source.SIRENE) for company in data)
                session.commit()
        results[label] = time.perf_counter() - started
        engine.dispose()
    return results


def in_child(function, *args):  # type: ignore[no-untyped-def]
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(function, args)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--orm-rows", type=int, default=100_000)
    args = parser.parse_args()
    from bench.sirene_gen import write_sirene_file

    with tempfile.TemporaryDirectory(prefix="synergie-bench-") as tmp:
        path = Path(tmp) / "StockEtablissement.csv"
        started = time.perf_counter()
        expected = write_sirene_file(
            path, rows=args.rows, keep_communes=COMMUNES, keep_ratio=0.01, seed=1
        )
        size_mb = path.stat().st_size / 1e6
        print(f"file: {args.rows:,} rows, {size_mb:.0f} MB, 54 columns, {expected:,} active rows in "
              f"{'/'.join(COMMUNES)} (generated in {time.perf_counter() - started:.1f} s)")  # fmt: skip
        with path.open(
            "rb"
        ) as handle:  # warm the page cache so neither contender pays the first read
            while handle.read(1 << 24):
                pass
        base = in_child(baseline_csv_reader, str(path))
        mine = in_child(ours, str(path), tmp)
        # Sites with neither a usual name nor a sign are rejected (the legal name is in another file).
        assert base["kept"] == expected == mine["kept"] + mine["rejected"], (base, mine, expected)
        base_rate, our_rate = base["rows"] / base["seconds"], mine["rows"] / mine["seconds"]
        print(
            f"csv.reader loop : {base['seconds']:6.2f} s  {base_rate:>10,.0f} rows/s  peak RSS {base['rss']:.0f} MB"
        )
        print(f"synergie import : {mine['seconds']:6.2f} s  {our_rate:>10,.0f} rows/s  peak RSS {mine['rss']:.0f} MB"
              f"  ({mine['kept']:,} companies written, {mine['rejected']:,} rejected without a name)")  # fmt: skip
        print(f"ratio           : {our_rate / base_rate:.2f}x the csv.reader loop (goal >= 2x); "
              f"peak RSS {mine['rss']:.0f} MB (goal <= 300 MB)")  # fmt: skip
        loads = in_child(bulk_vs_orm, args.orm_rows, tmp)
        print(f"loading {args.orm_rows:,} rows: Core upsert batches {loads['bulk']:.2f} s, ORM add_all "
              f"{loads['orm']:.2f} s, ratio {loads['orm'] / loads['bulk']:.1f}x (goal >= 10x)")  # fmt: skip


if __name__ == "__main__":
    main()
