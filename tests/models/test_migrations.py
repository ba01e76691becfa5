"""Alembic migrations: they build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import models.tables  # noqa: F401


def test_migrations_match_the_models(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []


def test_contacts_created_before_0002_get_a_public_id(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from alembic import command

    from models.db import alembic_config, make_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = alembic_config(url)
    command.upgrade(config, "0001")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO company (id, name, name_key, source, stage, created_at, updated_at) "
            "VALUES (1, 'A', 'a', 'listing', 'listed', '2026-01-01', '2026-01-01')"
        ))  # fmt: skip
        for n in (1, 2):
            connection.execute(sa.text(
                "INSERT INTO contact (company_id, identity, created_at) VALUES (1, :i, '2026-01-01')"
            ), {"i": f"name:{n}"})  # fmt: skip
    command.upgrade(config, "head")
    with engine.connect() as connection:
        ids = connection.execute(sa.text("SELECT public_id FROM contact")).scalars().all()
    assert len(ids) == 2 and len(set(ids)) == 2 and all(len(i) == 32 for i in ids)
    command.downgrade(config, "0001")
