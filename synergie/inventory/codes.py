"""The controlled lists of the inventory: the European List of Waste and the material categories, read from data files."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = [
    "Category",
    "WasteCode",
    "categories",
    "category",
    "category_for_waste",
    "find_waste_code",
    "format_waste_code",
    "waste_codes",
]

DATA = Path(__file__).resolve().parent / "data"
WASTE_LIST = DATA / "liste-europeenne-dechets.csv"
CATEGORIES = DATA / "categories.csv"
# "15 01 01", "150101", "15.01.01", "15-01-01*": the digits are what count; the star is ignored
# on input (the list says which entries are hazardous).
_CODE_INPUT = re.compile(r"^\s*(\d{2})[\s.\-]?(\d{2})[\s.\-]?(\d{2})\s*\*?\s*$")


@dataclass(frozen=True, slots=True)
class WasteCode:
    """One entry of the European List of Waste: 2 digits a chapter, 4 a sub-chapter, 6 an entry."""

    code: str
    hazardous: bool
    level: str
    label: str

    @property
    def display(self) -> str:
        """« 15 01 10* » as the list writes it."""
        return format_waste_code(self.code, self.hazardous)


@dataclass(frozen=True, slots=True)
class Category:
    """A material category of the controlled list: its code and its French label."""

    code: str
    label: str
    waste_prefixes: tuple[str, ...] = ()


def _data_lines(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as handle:
        return [line for line in handle if line.strip() and not line.startswith("#")]


@cache
def waste_codes() -> dict[str, WasteCode]:
    """Every chapter, sub-chapter and entry of the list, by its digits."""
    reader = csv.DictReader(_data_lines(WASTE_LIST), delimiter=";")
    return {
        row["code"]: WasteCode(
            row["code"], row["dangereux"] == "oui", row["niveau"], row["libelle"]
        )
        for row in reader
    }


@cache
def categories() -> dict[str, Category]:
    """The material categories, by code, in the file's order."""
    reader = csv.DictReader(_data_lines(CATEGORIES), delimiter=";")
    return {
        row["code"]: Category(row["code"], row["libelle"], tuple(row["codes_dechets"].split()))
        for row in reader
    }


def category_for_waste(code: str) -> Category:
    """Return the category a waste code (6 digits) falls in: the longest matching prefix, else « autres »."""
    best: tuple[int, Category] | None = None
    for item in categories().values():
        for prefix in item.waste_prefixes:
            if code.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), item)
    return best[1] if best else categories()["autres"]


def category(value: str) -> Category | None:
    """Return the category named by its code or its label (case and accents as typed), or None."""
    wanted = value.strip().lower()
    for item in categories().values():
        if wanted in (item.code, item.label.lower()):
            return item
    return None


def find_waste_code(value: str) -> WasteCode | None:
    """Return the list's entry (6 digits) for a code typed as « 15 01 01 », « 150101 »…, or None."""
    match = _CODE_INPUT.match(value)
    if match is None:
        return None
    entry = waste_codes().get("".join(match.groups()))
    return entry if entry is not None and entry.level == "rubrique" else None


def format_waste_code(code: str, hazardous: bool) -> str:
    """« 150110 » → « 15 01 10* »."""
    return f"{code[:2]} {code[2:4]} {code[4:]}" + ("*" if hazardous else "")
