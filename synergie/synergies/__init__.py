"""Synergies: matching one site's outgoing flows with another's needs, and the synergy life cycle."""
