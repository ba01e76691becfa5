"""What the synergies remove from the road: km per year and CO2e, with factors read from data.

Only synergies ``agreed`` or ``running`` count: an idea or a study removes no truck yet.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from models.enums import SynergyStatus
from models.tables import Synergy

FACTORS_FILE = Path(__file__).with_name("factors.toml")
COUNTED = frozenset({SynergyStatus.AGREED, SynergyStatus.RUNNING})
COUNTED_NOTE = "seules les synergies conclues (agreed) ou en service (running) sont comptées"


@dataclass(frozen=True)
class Factor:
    """One vehicle's emission factor per vehicle-km, with where it comes from."""

    key: str
    label: str
    kg_co2e_per_km: float
    source: str
    element_id: str
    uncertainty_percent: float | None

    def citation(self) -> str:
        """« ADEME, Base Carbone, élément 21055 : 1,19 kgCO2e/km (incertitude …) »."""
        from synergie.french import number

        uncertainty = (
            f"incertitude ± {number(self.uncertainty_percent, digits=0)} %"
            if self.uncertainty_percent is not None
            else "incertitude : non reprise ici, voir la fiche de la source"
        )
        return (
            f"{self.label} : {number(self.kg_co2e_per_km, digits=3)} kgCO2e par km "
            f"({self.source}, élément {self.element_id} ; {uncertainty})"
        )


class UnknownVehicle(ValueError):
    """A vehicle key the factors file does not have; the message is in French."""


@cache
def load_factors(path: Path = FACTORS_FILE) -> dict[str, Factor]:
    """Read every vehicle's factor from the factors file (fuel routes computed as L/km × kg/L)."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    factors = {}
    for key, row in data["vehicles"].items():
        per_km = row.get("kg_co2e_per_km")
        if per_km is None:
            per_km = row["litres_per_km"] * row["kg_co2e_per_litre"]
        uncertainty = row.get("uncertainty_percent")
        factors[key] = Factor(
            key, row["label"], float(per_km), row["source"], str(row["element_id"]),
            float(uncertainty) if uncertainty not in (None, "") else None,
        )  # fmt: skip
    return factors


def factor_for(vehicle: str) -> Factor:
    """Return the factor of ``vehicle`` or refuse it, naming the known ones."""
    factors = load_factors()
    if vehicle not in factors:
        raise UnknownVehicle(
            f"véhicule « {vehicle} » inconnu ; possibles : {', '.join(sorted(factors))}"
        )
    return factors[vehicle]


@dataclass(frozen=True)
class SynergyImpact:
    """One synergy's yearly figures."""

    synergy_id: int | None
    title: str
    status: SynergyStatus
    km_per_year: float
    kg_co2e_per_year: float
    tonnes_per_year: float
    factor: Factor


@dataclass(frozen=True)
class Impact:
    """The counted synergies' totals and each one's figures."""

    per_synergy: tuple[SynergyImpact, ...]
    km_per_year: float
    t_co2e_per_year: float
    tonnes_reused_per_year: float
    factors_used: tuple[Factor, ...]


def synergy_impact(synergy: Synergy) -> SynergyImpact:
    """Km a year (trips × km × 12) and kgCO2e a year for one synergy, whatever its status."""
    factor = factor_for(synergy.vehicle)
    km = synergy.trips_per_month * synergy.km_per_trip * 12
    return SynergyImpact(
        synergy.id, synergy.title, SynergyStatus(synergy.status), km,
        km * factor.kg_co2e_per_km, synergy.tonnes_per_year, factor,
    )  # fmt: skip


def impact(synergies: Iterable[Synergy]) -> Impact:
    """Totals over the synergies agreed or running; the others are left out (COUNTED_NOTE)."""
    counted = tuple(synergy_impact(s) for s in synergies if SynergyStatus(s.status) in COUNTED)
    used = {i.factor.key: i.factor for i in counted}
    return Impact(
        counted,
        sum(i.km_per_year for i in counted),
        sum(i.kg_co2e_per_year for i in counted) / 1000,
        sum(i.tonnes_per_year for i in counted),
        tuple(used.values()),
    )
