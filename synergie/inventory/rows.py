"""One material flow as typed by a person (portal, CLI, CSV): checked field by field, French messages naming the field."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from models.inventory import Direction, Frequency, MoneyKind, Outlet, Unit
from synergie.inventory.codes import categories, category, category_for_waste, find_waste_code

__all__ = [
    "FIELDS",
    "FIELD_LABELS",
    "FlowRejected",
    "FlowRow",
    "MONTHS_PER",
    "is_blank",
    "validate_flow",
]

# The fields of a flow, in the order of the form and of the CSV, with their French labels.
FIELD_LABELS: dict[str, str] = {
    "direction": "Sens",
    "description": "Matière (vos mots)",
    "category": "Catégorie",
    "waste_code": "Code déchet",
    "quantity": "Quantité",
    "unit": "Unité",
    "frequency": "Par",
    "outlet": "Exutoire ou origine actuelle",
    "trips_per_month": "Trajets de camion par mois",
    "km_per_trip": "Km par trajet",
    "amount_eur": "Montant (€)",
    "money_kind": "Coût ou recette",
    "note": "Remarque",
}
FIELDS: tuple[str, ...] = tuple(FIELD_LABELS)

# A month is 52/12 weeks and 1/12 of a year.
MONTHS_PER: dict[Frequency, float] = {
    Frequency.WEEK: 52 / 12,
    Frequency.MONTH: 1.0,
    Frequency.YEAR: 1 / 12,
}
MAX_NUMBER = 1e9

_DIRECTIONS = {"entrant": Direction.INCOMING, "entree": Direction.INCOMING, "in": Direction.INCOMING,
               "sortant": Direction.OUTGOING, "sortie": Direction.OUTGOING, "out": Direction.OUTGOING}  # fmt: skip
_UNITS = {"t": Unit.TONNE, "tonne": Unit.TONNE, "tonnes": Unit.TONNE, "kg": Unit.KILOGRAM,
          "m3": Unit.CUBIC_METRE, "m³": Unit.CUBIC_METRE, "l": Unit.LITRE, "litre": Unit.LITRE,
          "litres": Unit.LITRE, "piece": Unit.PIECE, "pieces": Unit.PIECE,
          "palette": Unit.PALLET, "palettes": Unit.PALLET}  # fmt: skip
_FREQUENCIES = {"semaine": Frequency.WEEK, "par semaine": Frequency.WEEK, "week": Frequency.WEEK,
                "hebdomadaire": Frequency.WEEK, "mois": Frequency.MONTH, "par mois": Frequency.MONTH,
                "month": Frequency.MONTH, "mensuel": Frequency.MONTH, "an": Frequency.YEAR,
                "par an": Frequency.YEAR, "annee": Frequency.YEAR, "year": Frequency.YEAR,
                "annuel": Frequency.YEAR}  # fmt: skip
_OUTLETS = {outlet.value: outlet for outlet in Outlet}
_MONEY = {"cout": MoneyKind.COST, "recette": MoneyKind.VALUE, "valeur": MoneyKind.VALUE,
          "cost": MoneyKind.COST, "value": MoneyKind.VALUE}  # fmt: skip


class FlowRejected(ValueError):
    """A flow that cannot be stored: one French message per field at fault (``errors``)."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__(" ; ".join(f"{FIELD_LABELS.get(k, k)} : {v}" for k, v in errors.items()))


@dataclass(frozen=True, slots=True)
class FlowRow:
    """A checked flow, ready to store."""

    direction: Direction
    description: str
    category: str
    waste_code: str | None
    hazardous: bool
    quantity: float
    unit: Unit
    frequency: Frequency
    outlet: Outlet
    trips_per_month: float | None = None
    km_per_trip: float | None = None
    amount_eur: float | None = None
    money_kind: MoneyKind | None = None
    note: str | None = None

    @property
    def monthly_quantity(self) -> float:
        """The quantity per month, in the row's unit."""
        return self.quantity * MONTHS_PER[self.frequency]

    def columns(self) -> dict[str, Any]:
        """The row's values as the table's columns."""
        return {**asdict(self), "monthly_quantity": self.monthly_quantity}


def _plain(value: str) -> str:
    """Lower case, no accents, single spaces: how a typed choice is compared."""
    text = unicodedata.normalize("NFKD", value.strip().lower())
    return re.sub(r"\s+", " ", "".join(c for c in text if not unicodedata.combining(c)))


def is_blank(values: Mapping[str, Any]) -> bool:
    """Whether a row of the form was left empty (every field blank)."""
    return not any(str(values.get(name) or "").strip() for name in FIELDS)


def _choice(value: str, table: Mapping[str, Any], allowed: str) -> Any:
    key = _plain(value)
    if key in table:
        return table[key]
    for member, choice in table.items():
        if _plain(member) == key:
            return choice
    raise ValueError(f"« {value.strip()} » n'est pas une valeur possible ({allowed})")


def _number(value: str, *, positive: bool) -> float:
    text = (
        value.strip().replace("\u202f", "").replace("\xa0", "").replace(" ", "").replace(",", ".")
    )
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"« {value.strip()} » n'est pas un nombre (ex. 2,5)") from None
    if not math.isfinite(number) or number > MAX_NUMBER:
        raise ValueError(f"« {value.strip()} » n'est pas un nombre raisonnable")
    if number < 0:
        raise ValueError(f"{value.strip()} est négatif : indiquez une valeur positive")
    if positive and number == 0:
        raise ValueError("doit être supérieure à zéro")
    return number


def validate_flow(values: Mapping[str, Any]) -> FlowRow:
    """Return the checked flow, or raise FlowRejected naming every field at fault, in French."""
    get = {name: str(values.get(name) or "").strip() for name in FIELDS}
    errors: dict[str, str] = {}
    checked: dict[str, Any] = {}

    def required(name: str) -> str | None:
        if not get[name]:
            errors[name] = "à remplir"
            return None
        return get[name]

    def check(name: str, convert: Any) -> None:
        try:
            checked[name] = convert(get[name])
        except ValueError as exc:
            errors[name] = str(exc)

    if required("direction"):
        check("direction", lambda v: _choice(v, _DIRECTIONS, "entrant, sortant"))
    if required("description"):
        if len(get["description"]) > 300:
            errors["description"] = "300 caractères au plus"
        checked["description"] = get["description"][:300]
    checked["waste_code"], checked["hazardous"] = None, False
    if get["waste_code"]:
        entry = find_waste_code(get["waste_code"])
        if entry is None:
            errors["waste_code"] = (
                f"« {get['waste_code']} » n'est pas un code de la liste européenne des déchets "
                "(6 chiffres, ex. 15 01 01)"
            )
        else:
            checked["waste_code"], checked["hazardous"] = entry.code, entry.hazardous
    if get["category"]:
        found = category(get["category"])
        if found is None:
            errors["category"] = (
                f"« {get['category']} » n'est pas dans la liste ({', '.join(categories())})"
            )
        else:
            checked["category"] = found.code
    elif checked["waste_code"]:
        # The code says the category: nobody has to say it twice.
        checked["category"] = category_for_waste(checked["waste_code"]).code
    elif "waste_code" not in errors:
        errors["category"] = "à choisir (ou donnez un code déchet)"
    if required("quantity"):
        check("quantity", lambda v: _number(v, positive=True))
    if required("unit"):
        check("unit", lambda v: _choice(v, _UNITS, ", ".join(u.value for u in Unit)))
    if required("frequency"):
        check("frequency", lambda v: _choice(v, _FREQUENCIES, "semaine, mois, an"))
    if required("outlet"):
        check("outlet", lambda v: _choice(v, _OUTLETS, ", ".join(o.value for o in Outlet)))
    for name in ("trips_per_month", "km_per_trip", "amount_eur"):
        checked[name] = None
        if get[name]:
            check(name, lambda v: _number(v, positive=False))
    checked["money_kind"] = None
    if get["money_kind"]:
        check("money_kind", lambda v: _choice(v, _MONEY, "coût, recette"))
    if (
        checked.get("amount_eur") is not None
        and checked.get("money_kind") is None
        and "money_kind" not in errors
    ):
        errors["money_kind"] = "dites si le montant est un coût ou une recette"
    if len(get["note"]) > 2000:
        errors["note"] = "2 000 caractères au plus"
    checked["note"] = get["note"] or None
    if errors:
        raise FlowRejected(errors)
    return FlowRow(**checked)
