"""Km and CO2e avoided: factors read from the data file, only agreed or running synergies counted."""

from __future__ import annotations

import pytest

from models import Synergy, SynergyStatus
from synergie.reporting.impact import (
    COUNTED_NOTE,
    UnknownVehicle,
    factor_for,
    impact,
    load_factors,
)


def synergy(status: str, vehicle: str = "articulated-40t-long-distance") -> Synergy:
    return Synergy(
        title=status, status=SynergyStatus(status), vehicle=vehicle, trips_per_month=3.0,
        km_per_trip=360.0, tonnes_per_year=24.0,
    )  # fmt: skip


def test_the_seed_synergy_removes_12960_km_and_15_4_t_a_year() -> None:
    result = impact([synergy("agreed")])
    assert result.km_per_year == 12_960
    assert result.t_co2e_per_year == pytest.approx(15.4224)
    assert result.tonnes_reused_per_year == 24
    assert "21055" in result.factors_used[0].citation()
    assert "Base Carbone" in result.factors_used[0].citation()


def test_only_agreed_and_running_count() -> None:
    result = impact([synergy(s) for s in ("idea", "study", "agreed", "running", "stopped")])
    assert result.km_per_year == 2 * 12_960
    assert {i.status for i in result.per_synergy} == {SynergyStatus.AGREED, SynergyStatus.RUNNING}
    assert "conclues" in COUNTED_NOTE


def test_the_vehicle_is_chosen_per_synergy_from_the_data_file() -> None:
    factors = load_factors()
    assert factors["articulated-40t-regional"].kg_co2e_per_km == 1.18
    assert factors["articulated-40t-regional"].element_id == "21113"
    assert factors["rigid-19t"].kg_co2e_per_km == 0.947
    assert factors["articulated-40t-fuel"].kg_co2e_per_km == pytest.approx(0.342 * 3.17)
    result = impact([synergy("running", "rigid-19t"), synergy("agreed")])
    assert result.t_co2e_per_year == pytest.approx(12.96 * (0.947 + 1.19))
    with pytest.raises(UnknownVehicle, match="inconnu"):
        factor_for("trottinette")
