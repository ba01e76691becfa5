"""StatementPipe on a real PostgreSQL: each run commits on its own, its error comes out of ``wait``."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from models.db import DriverStatement, StatementPipe, autocommit_connection

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)

NOTE = sa.table("pipe_note", sa.column("id", sa.Integer), sa.column("text", sa.String))
INSERT = DriverStatement(
    sa.insert(NOTE).values(id=sa.bindparam("b_id"), text=sa.bindparam("b_text"))
)


@pytest.fixture
def notes(engine: sa.Engine) -> sa.Engine:
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE pipe_note (id integer PRIMARY KEY, text varchar)"))
    return engine


def texts(engine: sa.Engine) -> list[str | None]:
    with engine.connect() as connection:
        return list(connection.execute(sa.text("SELECT text FROM pipe_note ORDER BY id")).scalars())


def test_each_run_is_committed_once_waited_for_and_its_error_comes_out_of_wait(
    notes: sa.Engine,
) -> None:
    import psycopg

    with autocommit_connection(notes) as connection:
        pipe = StatementPipe(connection, INSERT)
        pipe.send({"b_id": 1, "b_text": "l'été, 50 % « ok »"})
        pipe.wait()
        assert texts(notes) == ["l'été, 50 % « ok »"]  # seen from another connection
        pipe.send({"b_id": 2, "b_text": None})
        pipe.send({"b_id": 1, "b_text": "twice"})  # waits for id 2 first
        with pytest.raises(psycopg.errors.UniqueViolation):
            pipe.wait()
        pipe.wait()  # the error was told once
        pipe.send({"b_id": 3, "b_text": "after"})  # the connection goes on
        pipe.close()
        prepared = connection.exec_driver_sql(
            "SELECT count(*) FROM pg_prepared_statements"
        ).scalar()
    assert texts(notes) == ["l'été, 50 % « ok »", None, "after"]
    assert prepared == 0  # closed: nothing left behind on a pooled connection
