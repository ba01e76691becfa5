"""The controlled lists (European List of Waste, categories) and the checks of one flow, without a database."""

from __future__ import annotations

from collections import Counter

import pytest

from models.inventory import Direction, Frequency, MoneyKind, Outlet, Unit
from synergie.inventory.codes import (
    categories,
    category_for_waste,
    find_waste_code,
    format_waste_code,
    waste_codes,
)
from synergie.inventory.rows import FlowRejected, validate_flow

CARDBOARD = {
    "direction": "sortant", "description": "chutes de carton", "waste_code": "15 01 01",
    "quantity": "2", "unit": "t", "frequency": "mois", "outlet": "collecteur",
    "trips_per_month": "3", "km_per_trip": "360",
}  # fmt: skip


def test_the_list_holds_every_chapter_sub_chapter_and_entry_of_the_decision() -> None:
    levels = Counter(code.level for code in waste_codes().values())
    # Decision 2000/532/EC as amended by 2014/955/EU: 20 chapters, 111 sub-chapters, 842 entries.
    assert levels == {"chapitre": 20, "sous-chapitre": 111, "rubrique": 842}
    entries = [code for code in waste_codes().values() if code.level == "rubrique"]
    assert all(len(code.code) == 6 and code.code[:4] in waste_codes() for code in entries)
    assert sum(code.hazardous for code in entries) == 408


@pytest.mark.parametrize(
    ("typed", "hazardous", "words"),
    [
        ("15 01 01", False, "papier/carton"),
        ("200101", False, "papier et carton"),
        ("15.01.02", False, "plastiques"),
        ("03 01 05", False, "sciure"),
        ("17 04 05", False, "fer et acier"),
        ("15 01 10*", True, "substances dangereuses"),
        ("130205", True, "huiles moteur"),
        ("16 06 01", True, "accumulateurs au plomb"),
        ("08-01-11", True, "peintures"),
    ],
)
def test_common_industrial_codes_are_found_with_their_hazard_and_french_label(
    typed: str, hazardous: bool, words: str
) -> None:
    entry = find_waste_code(typed)
    assert entry is not None and entry.hazardous is hazardous and words in entry.label
    assert entry.display == format_waste_code(entry.code, hazardous)
    assert entry.display.endswith("*") is hazardous


@pytest.mark.parametrize("typed", ["999999", "15 01", "15", "1501011", "carton", "", "15 01 00"])
def test_what_is_not_an_entry_of_the_list_is_not_found(typed: str) -> None:
    assert find_waste_code(typed) is None


def test_categories_are_a_closed_french_list_and_codes_say_theirs() -> None:
    assert (
        "papier-carton" in categories()
        and categories()["papier-carton"].label == "Papiers et cartons"
    )
    assert category_for_waste("150101").code == "papier-carton"
    assert category_for_waste("200101").code == "papier-carton"
    assert category_for_waste("130205").code == "huiles-graisses"
    assert category_for_waste("150110").code == "produits-chimiques"  # the longest prefix wins
    assert category_for_waste("150106").code == "emballages-mixtes"
    assert category_for_waste("180101").code == "autres"


def test_the_reference_case_cardboard_row_is_checked_and_brought_to_a_month() -> None:
    row = validate_flow(CARDBOARD)
    assert row.direction == Direction.OUTGOING and row.unit == Unit.TONNE
    assert (row.waste_code, row.hazardous, row.category) == ("150101", False, "papier-carton")
    assert row.outlet == Outlet.COLLECTOR and (row.trips_per_month, row.km_per_trip) == (3, 360)
    assert row.monthly_quantity == 2


@pytest.mark.parametrize(
    ("per", "quantity", "monthly"),
    [("semaine", "150", 150 * 52 / 12), ("par semaine", "12", 52), ("week", "3", 13),
     ("mois", "2,5", 2.5), ("month", "1 200", 1200), ("an", "24", 2), ("year", "6", 0.5)],
)  # fmt: skip
def test_every_frequency_is_brought_to_a_month(per: str, quantity: str, monthly: float) -> None:
    row = validate_flow({**CARDBOARD, "frequency": per, "quantity": quantity})
    assert row.monthly_quantity == pytest.approx(monthly)
    assert row.frequency in set(Frequency)


def test_units_and_choices_are_read_as_people_type_them() -> None:
    row = validate_flow({**CARDBOARD, "unit": "m3", "direction": "Entrant", "outlet": "Reemploi",
                         "amount_eur": "1 200,50", "money_kind": "recette"})  # fmt: skip
    assert (row.unit, row.direction, row.outlet) == (
        Unit.CUBIC_METRE,
        Direction.INCOMING,
        Outlet.REUSE,
    )
    assert (row.amount_eur, row.money_kind) == (1200.5, MoneyKind.VALUE)
    assert validate_flow({**CARDBOARD, "unit": "palettes"}).unit == Unit.PALLET
    assert validate_flow({**CARDBOARD, "unit": "L"}).unit == Unit.LITRE


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            {"waste_code": "99 99 99"},
            "waste_code",
            "n'est pas un code de la liste européenne des déchets",
        ),
        ({"waste_code": "15 01"}, "waste_code", "6 chiffres"),
        ({"quantity": "-2"}, "quantity", "-2 est négatif"),
        ({"quantity": "0"}, "quantity", "supérieure à zéro"),
        ({"quantity": "deux"}, "quantity", "n'est pas un nombre"),
        ({"quantity": "nan"}, "quantity", "n'est pas un nombre raisonnable"),
        (
            {"unit": "tonneaux"},
            "unit",
            "« tonneaux » n'est pas une valeur possible (t, kg, m³, L, pièces, palettes)",
        ),
        ({"frequency": "par jour"}, "frequency", "n'est pas une valeur possible"),
        ({"direction": "dedans"}, "direction", "entrant, sortant"),
        ({"outlet": "la rivière"}, "outlet", "n'est pas une valeur possible"),
        ({"km_per_trip": "-360"}, "km_per_trip", "négatif"),
        ({"amount_eur": "50"}, "money_kind", "coût ou une recette"),
        ({"description": ""}, "description", "à remplir"),
        ({"waste_code": "", "category": ""}, "category", "à choisir"),
        ({"category": "bidule"}, "category", "n'est pas dans la liste"),
    ],
)
def test_a_bad_field_is_refused_in_french_naming_the_field(
    change: dict[str, str], field: str, message: str
) -> None:
    with pytest.raises(FlowRejected) as caught:
        validate_flow({**CARDBOARD, **change})
    assert set(caught.value.errors) == {field}
    assert message in caught.value.errors[field]
    assert message in str(caught.value)


def test_every_fault_of_a_row_is_named_at_once() -> None:
    with pytest.raises(FlowRejected) as caught:
        validate_flow({**CARDBOARD, "waste_code": "123456", "quantity": "-1", "unit": "brouettes"})
    assert set(caught.value.errors) == {"waste_code", "quantity", "unit"}
    assert str(caught.value).startswith("Code déchet : ")
