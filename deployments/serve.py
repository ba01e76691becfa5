"""Serve every Synergie deployment from this process: ``python -m deployments.serve``."""

from __future__ import annotations

from prefect import serve

from deployments.definitions import build_deployments

if __name__ == "__main__":
    serve(*build_deployments())
