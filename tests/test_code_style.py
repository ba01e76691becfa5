"""The house rules a machine can check: ruff clean, Prefect only where it belongs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--quiet", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing(tmp_path: Path) -> None:
    packages = ["synergie", "models", "channels", "tasks", "flows", "portal", "deployments"]
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy"), *packages],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_prefect_is_imported_only_by_flows_tasks_deployments_and_the_portal_emitter() -> None:
    allowed = ("flows/", "tasks/", "deployments/", "portal/events.py")
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("synergie", "models", "channels", "portal", "flows", "tasks", "deployments")
        for path in (ROOT / folder).rglob("*.py")
        if re.search(r"^\s*(from|import) prefect\b", path.read_text(), re.M)
        and not str(path.relative_to(ROOT)).startswith(allowed)
    ]
    assert offenders == []
