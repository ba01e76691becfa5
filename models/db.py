"""Engine and session factory: SQLite (WAL) by default, PostgreSQL by URL alone."""

from __future__ import annotations

import re
import select
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlmodel import Session

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# How long a SQLite writer waits for the write lock before "database is locked".
BUSY_TIMEOUT_MS = 30_000


class DatabaseError(RuntimeError):
    """The database cannot be reached or is not ready; the message tells staff what to do."""


def normalise_url(url: str) -> str:
    """Route plain ``postgresql://`` URLs to psycopg 3, the driver we ship."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers go on while a flow writes; busy_timeout makes concurrent writers
    # wait their turn instead of failing at once with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


@contextmanager
def write_connection(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection whose transactions take SQLite's write lock at their first write statement.

    pysqlite opens transactions lazily with a deferred BEGIN before the first INSERT or
    UPDATE; a statement that reads then writes (UPDATE … WHERE id IN (SELECT …)) could
    then find its snapshot stale when another writer commits in between, and fail at
    once with "database is locked". BEGIN IMMEDIATE waits its turn (busy_timeout) instead.
    """
    with engine.connect() as connection:
        raw = connection.connection.driver_connection
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            raw.isolation_level = "IMMEDIATE"  # type: ignore[union-attr]
        try:
            yield connection
        finally:
            if sqlite:
                connection.rollback()
                raw.isolation_level = ""  # type: ignore[union-attr]


@contextmanager
def write_transaction(
    engine: sa.Engine, *, lock_timeout: float | None = None
) -> Iterator[sa.Connection]:
    """One write transaction on a ``write_connection``; commits on success.

    With ``lock_timeout`` (seconds) a lock held by another writer is waited for that long
    only, then the statement fails (``is_lock_timeout`` tells that error apart).
    """
    with write_connection(engine) as connection:
        sqlite = engine.dialect.name == "sqlite"
        if lock_timeout is not None and sqlite:
            connection.exec_driver_sql(f"PRAGMA busy_timeout={int(lock_timeout * 1000)}")
            connection.commit()  # end the autobegun (empty) transaction before ours
        try:
            with connection.begin():
                if lock_timeout is not None and not sqlite:
                    connection.exec_driver_sql(
                        f"SET LOCAL lock_timeout = '{int(lock_timeout * 1000)}ms'"
                    )
                yield connection
        finally:
            if lock_timeout is not None and sqlite:
                connection.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


@contextmanager
def autocommit_connection(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection of its own on which each statement commits as it runs (PostgreSQL).

    For a statement run once per message sent, atomic on its own: outside any transaction
    block it is one round trip to the server instead of three (BEGIN, the statement,
    COMMIT). Two statements run on it are two commits, not one: keep such a statement
    whole (data-modifying CTEs). SQLite has no use for it (a round trip costs nothing
    there, and a writer takes the write lock in a transaction).
    """
    if engine.dialect.name != "postgresql":
        raise ValueError("autocommit_connection is for PostgreSQL")
    with engine.connect() as connection:
        yield connection.execution_options(isolation_level="AUTOCOMMIT")


def is_lock_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` is a write that gave up waiting for another transaction's lock."""
    if not isinstance(exc, sa.exc.OperationalError):
        return False
    # SQLite: SQLITE_BUSY; PostgreSQL: lock_not_available (55P03, lock_timeout).
    return "database is locked" in str(exc.orig) or getattr(exc.orig, "sqlstate", "") == "55P03"


class DriverStatement:
    """A Core statement compiled once per dialect, then run on the driver (``exec_driver_sql``).

    For the statements run per message or per imported row: there SQLAlchemy's per-call
    work (execution context, parameter processing) cost more than SQLite takes to run them.
    Parameters are given by bind name (``column_keys`` adds an insert's columns as binds);
    each still goes through its type's processor, if it has one (aware datetimes become
    what the database stores), and values written in the statement stay.
    """

    def __init__(self, statement: sa.Executable, *, column_keys: Sequence[str] = ()) -> None:
        self.statement = statement
        self.column_keys = list(column_keys)
        self._compiled: dict[str, _Compiled] = {}

    def execute(self, connection: sa.Connection, params: dict[str, Any]) -> sa.CursorResult[Any]:
        compiled = self._for(connection.dialect)
        return connection.exec_driver_sql(compiled.sql, compiled.arguments(params))

    def execute_on_driver(self, connection: sa.Connection, params: dict[str, Any]) -> None:
        """Run the statement straight on the driver's connection; its result is not read.

        Without SQLAlchemy's execution context (its events and error wrapping included):
        for one statement run once per message sent, on a connection of its own
        (``autocommit_connection``), where that work cost as much client time as the
        statement took on the server. Errors are the driver's own.
        """
        compiled = self._for(connection.dialect)
        connection.connection.driver_connection.execute(compiled.sql, compiled.arguments(params))  # type: ignore[union-attr]

    def execute_many(self, connection: sa.Connection, rows: list[dict[str, Any]]) -> None:
        """Run the statement once per row, in one driver ``executemany``."""
        compiled = self._for(connection.dialect)
        connection.exec_driver_sql(compiled.sql, [compiled.arguments(row) for row in rows])

    def _for(self, dialect: sa.Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _Compiled.of(
                self.statement, dialect, self.column_keys
            )
        return compiled


class StatementPipe:
    """One statement sent ahead on a PostgreSQL connection of its own, its end read later.

    For the statement run once per message sent (``send``, then ``wait`` before the next
    message's data is complete): the server runs it while the client talks to the relay,
    without a thread to hand it over to (waking one cost as much client time as the rest
    of the recording). The statement is prepared once per pipe and must stand alone:
    the connection is in autocommit (``autocommit_connection``), each run commits itself.
    Its result is not read, its errors are the driver's own, raised by ``wait``.
    """

    def __init__(self, connection: sa.Connection, statement: DriverStatement) -> None:
        from psycopg import pq

        self._pq = pq
        driver = connection.connection.driver_connection
        self._pgconn = driver.pgconn  # type: ignore[union-attr]
        self._encoding = driver.info.encoding  # type: ignore[union-attr]
        self._compiled = statement._for(connection.dialect)
        sql, self._order = _numbered(self._compiled.sql)
        self._name = f"synergie_{uuid.uuid4().hex}".encode()
        self._pending = False
        # poll rather than select: a busy process may hold descriptors past select's 1024.
        self._readable = select.poll()
        self._readable.register(self._pgconn.socket, select.POLLIN)
        self._finish(self._pgconn.prepare(self._name, sql.encode(self._encoding)))

    def send(self, params: dict[str, Any]) -> None:
        """Send one run of the statement with ``params`` (by bind name) and return at once."""
        self.wait()
        values = self._compiled.arguments(params)
        arguments = [
            None if (v := values[name]) is None else _text(v).encode(self._encoding)
            for name in self._order
        ]
        self._pgconn.send_query_prepared(self._name, arguments)
        self._pending = True

    def wait(self) -> None:
        """Return once the run sent last has ended (committed); raise its error if it failed."""
        if not self._pending:
            return
        self._pending = False
        pgconn = self._pgconn
        pgconn.consume_input()
        while pgconn.is_busy():
            self._readable.poll()
            pgconn.consume_input()
        failed = None
        while (result := pgconn.get_result()) is not None:
            failed = failed or self._failed(result)
        if failed is not None:
            raise failed

    def close(self) -> None:
        """Wait for the last run, then forget the prepared statement (the connection goes back to the pool)."""
        self.wait()
        self._finish(self._pgconn.exec_(b"DEALLOCATE " + self._name))

    def _finish(self, result: Any) -> None:
        failed = self._failed(result)
        if failed is not None:
            raise failed

    def _failed(self, result: Any) -> Exception | None:
        if result.status not in (self._pq.ExecStatus.FATAL_ERROR, self._pq.ExecStatus.BAD_RESPONSE):
            return None
        from psycopg import errors

        return errors.error_from_result(result, encoding=self._encoding)


_PYFORMAT = re.compile(r"%\((?P<name>[^)]+)\)s|%%")


def _numbered(sql: str) -> tuple[str, list[str]]:
    """``sql`` in psycopg's ``%(name)s`` style, with ``$1``… placeholders; and the names in order."""
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match["name"]
        if name is None:
            return "%"
        if name not in order:
            order.append(name)
        return f"${order.index(name) + 1}"

    return _PYFORMAT.sub(number, sql), order


def _text(value: Any) -> str:
    """A parameter in PostgreSQL's text format (ISO dates; the statement casts what it needs)."""
    if isinstance(value, bool):
        return "t" if value else "f"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True)
class _Compiled:
    """The SQL text of a statement for one dialect, and how to turn named values into its arguments."""

    sql: str
    names: list[str] | None  # the order of positional arguments, or None for named ones
    defaults: dict[str, Any]
    processors: dict[str, Any]

    @classmethod
    def of(cls, statement: sa.Executable, dialect: sa.Dialect, column_keys: list[str]) -> _Compiled:
        compiled = statement.compile(dialect=dialect, column_keys=column_keys or None)  # type: ignore[attr-defined]
        binds = compiled.binds
        defaults = {name: bind.value for name, bind in binds.items() if not bind.required}
        processors = {
            name: processor
            for name, bind in binds.items()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        names = list(compiled.positiontup or []) if compiled.positional else None
        return cls(compiled.string, names, defaults, processors)

    def arguments(self, params: dict[str, Any]) -> Any:
        values = {**self.defaults, **params}
        for name, processor in self.processors.items():
            values[name] = processor(values[name])
        if self.names is None:
            return values
        return tuple(values[name] for name in self.names)


def make_engine(url: str, **kwargs: Any) -> sa.Engine:
    """Create an engine for ``url`` with the settings each backend needs."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000}, **kwargs)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, **kwargs)


@contextmanager
def session_scope(engine: sa.Engine) -> Iterator[Session]:
    """A session that commits on success and rolls everything back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(url: str) -> Any:
    """An Alembic configuration pointing at our migrations and at ``url``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def upgrade_database(url: str) -> str | None:
    """Create or upgrade the database to the latest migration; return the revision reached."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    config = alembic_config(url)
    try:
        command.upgrade(config, "head")
        engine = make_engine(url)
        with engine.connect() as connection:
            revision = MigrationContext.configure(connection).get_current_revision()
        engine.dispose()
    except sa.exc.OperationalError as exc:
        raise DatabaseError(
            f"base de données injoignable ({make_url(normalise_url(url)).render_as_string()}) : "
            f"{exc.orig}. Vérifiez SYNERGIE_DATABASE_URL."
        ) from exc
    return revision


def require_schema(engine: sa.Engine) -> None:
    """Fail with a clear message when the database was never initialised."""
    if not sa.inspect(engine).has_table("company"):
        raise DatabaseError(
            "la base de données n'est pas initialisée : lancez « synergie init » d'abord."
        )
