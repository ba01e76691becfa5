"""Column types: timezone-aware datetimes stored in UTC on every database (not types.py: that shadows the standard library)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Accepts only aware datetimes, stores them in UTC, and gives them back aware in UTC.

    SQLite has no time zones and PostgreSQL's ``timestamptz`` returns the session's zone:
    normalising here means every comparison in Python is between aware UTC values.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime refused (time must be timezone-aware): {value!r}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
