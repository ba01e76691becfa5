"""Prefect tasks: thin wrappers over the plain functions that hold the logic."""
