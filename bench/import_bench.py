"""Listing import benchmark: our streaming import against a plain csv.reader loop, side by side.

    python bench/import_bench.py [--rows 1000000] [--orm-rows 20000]

Generates a SIRENE StockEtablissement-shaped file, keeps ~1% of its rows by commune, and
prints rows/s of each contender, their ratio, our peak RSS, and bulk loading against ORM
``add_all``. Then the same for the legal units: a StockUniteLegale-shaped file (one unit per
SIREN of the sites file) scanned for the SIRENs kept, against a csv.reader loop doing the same
set look-up, and the whole import with ``legal_units``. Each contender runs in a fresh child
process so its peak RSS is its own.
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COMMUNES = ("21464", "21295")  # Nuits-Saint-Georges, Gevrey-Chambertin


def _peak_rss_mb() -> float:
    # VmHWM is this process's own high-water mark; ru_maxrss would carry the parent's over exec.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def baseline_csv_reader(path: str) -> dict[str, Any]:
    """The plain loop: csv.reader parses every row, then the row is filtered."""
    started = time.perf_counter()
    kept = rows = not_diffusible = 0
    sirens: set[str] = set()
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        commune, state, diffusion = (
            header.index("codeCommuneEtablissement"),
            header.index("etatAdministratifEtablissement"),
            header.index("statutDiffusionEtablissement"),
        )
        wanted = set(COMMUNES)
        for row in reader:
            rows += 1
            if row[commune] in wanted and row[state] == "A":
                kept += 1
                not_diffusible += row[diffusion] == "P"
                sirens.add(row[0])
    return {
        "seconds": time.perf_counter() - started,
        "rows": rows,
        "kept": kept,
        "not_diffusible": not_diffusible,
        "sirens": sorted(sirens),
        "rss": _peak_rss_mb(),
    }


def baseline_legal_units(path: str, sirens: list[str]) -> dict[str, float]:
    """The plain loop over StockUniteLegale: csv.reader parses every row, then its SIREN is looked up."""
    started = time.perf_counter()
    wanted, found, rows = set(sirens), 0, 0
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        for row in reader:
            rows += 1
            found += row[0] in wanted
    return {"seconds": time.perf_counter() - started, "rows": rows, "found": found,
            "rss": _peak_rss_mb()}  # fmt: skip


def ours_legal_units(path: str, sirens: list[str]) -> dict[str, float]:
    """Synergie's scan of StockUniteLegale for the SIRENs kept."""
    from synergie.listing.reading import scan_legal_units

    started = time.perf_counter()
    units, rows = scan_legal_units(Path(path), sirens)
    return {"seconds": time.perf_counter() - started, "rows": rows, "found": len(units),
            "rss": _peak_rss_mb()}  # fmt: skip


def ours(path: str, db_dir: str, legal_units: str | None = None) -> dict[str, float]:
    """Synergie's import, filters on, into a fresh SQLite database (with the legal units if given)."""
    from models.db import make_engine, upgrade_database
    from synergie.listing.loader import import_listing
    from synergie.listing.reading import ListingFilter

    url = f"sqlite:///{db_dir}/bench-{'legal' if legal_units else 'sites'}.db"
    upgrade_database(url)
    engine = make_engine(url)
    started = time.perf_counter()
    report = import_listing(
        engine=engine, path=Path(path), listing_filter=ListingFilter(communes=frozenset(COMMUNES)),
        rejects_dir=Path(db_dir), legal_units=Path(legal_units) if legal_units else None,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": report.rows_read, "kept": report.created, "rejected": report.rejected,
            "not_diffusible": report.not_diffusible, "named": report.named_from_legal_units,
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

    data: list[dict[str, Any]] = [
        {"siret": siret(n), "name": f"Entreprise {n}", "name_key": name_key(f"Entreprise {n}"),
         "naf_code": "16.23Z", "staff_band": "11", "address": f"{n} rue du Bench", "postcode": "21700",
         "commune": "Nuits-Saint-Georges", "commune_code": "21464", "latitude": None, "longitude": None,
         "location_precision": None}
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
    from bench.sirene_gen import write_legal_units_file, write_sirene_file

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
        # Sites with neither a usual name nor a sign are rejected (the legal name is in another
        # file); partially diffusible ones are left out and counted.
        assert base["kept"] == expected == mine["kept"] + mine["rejected"] + mine["not_diffusible"], (
            {k: v for k, v in base.items() if k != "sirens"}, mine, expected)  # fmt: skip
        base_rate, our_rate = base["rows"] / base["seconds"], mine["rows"] / mine["seconds"]
        print(
            f"csv.reader loop : {base['seconds']:6.2f} s  {base_rate:>10,.0f} rows/s  peak RSS {base['rss']:.0f} MB"
        )
        print(f"synergie import : {mine['seconds']:6.2f} s  {our_rate:>10,.0f} rows/s  peak RSS {mine['rss']:.0f} MB"
              f"  ({mine['kept']:,} companies written, {mine['rejected']:,} rejected without a name, "
              f"{mine['not_diffusible']:,} non diffusibles)")  # fmt: skip
        print(f"ratio           : {our_rate / base_rate:.2f}x the csv.reader loop (goal >= 2x); "
              f"peak RSS {mine['rss']:.0f} MB (goal <= 300 MB)")  # fmt: skip

        units_path = Path(tmp) / "StockUniteLegale.csv"
        started = time.perf_counter()
        units = write_legal_units_file(units_path, path, seed=1)
        print(f"legal units: {units:,} rows, {units_path.stat().st_size / 1e6:.0f} MB, "
              f"{len(base['sirens']):,} SIRENs kept (generated in {time.perf_counter() - started:.1f} s)")  # fmt: skip
        with units_path.open("rb") as handle:
            while handle.read(1 << 24):
                pass
        base_units = in_child(baseline_legal_units, str(units_path), base["sirens"])
        our_units = in_child(ours_legal_units, str(units_path), base["sirens"])
        assert base_units["found"] == our_units["found"] == len(base["sirens"]), (
            base_units,
            our_units,
        )
        base_rate, our_rate = (r["rows"] / r["seconds"] for r in (base_units, our_units))
        print(f"csv.reader loop : {base_units['seconds']:6.2f} s  {base_rate:>10,.0f} rows/s  "
              f"peak RSS {base_units['rss']:.0f} MB")  # fmt: skip
        print(f"synergie scan   : {our_units['seconds']:6.2f} s  {our_rate:>10,.0f} rows/s  "
              f"peak RSS {our_units['rss']:.0f} MB")  # fmt: skip
        print(f"ratio           : {our_rate / base_rate:.2f}x the csv.reader loop (goal >= 2x); "
              f"peak RSS {our_units['rss']:.0f} MB (goal <= 300 MB)")  # fmt: skip
        both = in_child(ours, str(path), tmp, str(units_path))
        assert both["kept"] + both["rejected"] + both["not_diffusible"] == expected, both
        print(f"import with --legal-units: {both['seconds']:.2f} s, peak RSS {both['rss']:.0f} MB "
              f"({both['kept']:,} companies written, {both['named']:,} named after their legal unit, "
              f"{both['rejected']:,} rejected, {both['not_diffusible']:,} non diffusibles)")  # fmt: skip
        loads = in_child(bulk_vs_orm, args.orm_rows, tmp)
        print(f"loading {args.orm_rows:,} rows: Core upsert batches {loads['bulk']:.2f} s, ORM add_all "
              f"{loads['orm']:.2f} s, ratio {loads['orm'] / loads['bulk']:.1f}x (goal >= 10x)")  # fmt: skip


if __name__ == "__main__":
    main()
