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


FIRST_PARTY = ("synergie", "models", "channels", "tasks", "flows", "portal", "deployments")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """First-party module → the first-party modules it imports, at any depth in its body."""
    import ast

    paths = [p for folder in FIRST_PARTY for p in (ROOT / folder).rglob("*.py")
             if "migrations" not in p.parts]  # fmt: skip
    modules = {_module_name(p): p for p in paths}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def test_no_import_circles_between_modules() -> None:
    graph = _import_graph()
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                circles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert circles == []
