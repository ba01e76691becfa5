"""Synergie: the outreach pipeline of a territorial industrial-ecology programme, on Prefect 3."""

from pathlib import Path

SAMPLE_LISTING = Path(__file__).parent / "sample" / "nuits-saint-georges.csv"
