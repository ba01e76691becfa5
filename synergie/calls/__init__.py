"""Calls by volunteers: callers (``callers``), the day's lists and digests (``lists``), outcomes (``outcomes``)."""
