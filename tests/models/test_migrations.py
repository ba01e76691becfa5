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


def test_0004_backfills_suppressions_and_rewrites_phone_numbers_in_e164(db_url: str) -> None:
    from alembic import command

    from models.db import alembic_config, make_engine

    config = alembic_config(db_url)
    command.downgrade(config, "0003")
    engine = make_engine(db_url)
    stamp = "'2026-01-01 10:00:00'"
    with engine.begin() as connection:
        for sql in (
            "INSERT INTO company (id, name, name_key, source, stage, created_at, updated_at) VALUES "
            f"(1, 'Sortie', 'sortie', 'listing', 'opted_out', {stamp}, {stamp}), "
            f"(2, 'Listée', 'listee', 'listing', 'listed', {stamp}, {stamp})",
            "INSERT INTO contact (id, public_id, company_id, identity, email, phone, created_at) VALUES "
            f"(1, 'a', 1, 'email:x', 'Sortie@Example.org', '06 39 98 10 03', {stamp}), "
            f"(2, 'b', 2, 'phone:y', NULL, '06.39.98.10.04', {stamp}), "
            f"(3, 'c', 2, 'email:z', 'garde@example.org', 'pas un numéro', {stamp})",
            f"INSERT INTO opt_out (contact_id, channel, at, source) VALUES (2, 'sms', {stamp}, 'carrier-stop')",
            "INSERT INTO caller (name, phone, calls_per_day, days_available, active, created_at) "
            f"VALUES ('Camille', '06 39 98 10 01', 5, '[1]', true, {stamp})",
            "INSERT INTO staff_member (name, email, phone, weekly_hours, days_off, active) "
            "VALUES ('Claire', 'eit@example.org', '0612345678', '{}', '[]', true)",
        ):  # fmt: skip
            connection.execute(sa.text(sql))
    command.upgrade(config, "head")
    with engine.connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT address, channel, source, contact_id FROM suppression ORDER BY address, channel"
        )).all()  # fmt: skip
        phones = connection.execute(sa.text(
            "SELECT phone FROM caller UNION ALL SELECT phone FROM staff_member "
            "UNION ALL SELECT phone FROM contact"
        )).scalars().all()  # fmt: skip
    engine.dispose()
    assert [tuple(row) for row in rows] == [
        ("+33639981003", "all", "migration", 1),
        ("+33639981004", "sms", "sms-stop", 2),
        ("sortie@example.org", "all", "migration", 1),
    ]
    # Unreadable numbers are kept as typed: nothing is lost, the SMS backend refuses them.
    assert sorted(phones) == sorted(
        ["+33639981001", "+33612345678", "+33639981003", "+33639981004", "pas un numéro"]
    )
