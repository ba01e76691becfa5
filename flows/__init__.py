"""Prefect flows, one file per deployment: each only wires tasks together."""
