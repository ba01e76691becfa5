"""Deployment definitions: what runs when, served by one process or by a process work pool."""
