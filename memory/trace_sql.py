"""Where the trace database's rows live: a SQLite file in the workspace, or PostgreSQL.

The trace database (memory/traces.py) speaks one SQL: upserts with `ON CONFLICT
... DO UPDATE`, quoted identifiers, rows as dicts in insertion order. The two
backends differ only in what that needs underneath: placeholders (`?`, `%s`),
column types, the column that keeps insertion order (SQLite's `rowid`, a
`seq` identity column in PostgreSQL), how a schema change takes the database
to itself while other processes open it too (`BEGIN IMMEDIATE`, an advisory
lock), and the connection. One connection per database per process, shared by
threads under a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from ..tools.errors import SpiralError


class SqlBackend(Protocol):
    where: str
    """The database in words, for messages (a path, or a redacted URI)."""
    order_column: str
    lock: threading.RLock

    def execute(self, sql: str, args: list | tuple = ()) -> int:
        """Run one statement; returns the rows it changed."""

    def query(self, sql: str, args: list | tuple = ()) -> list[dict[str, Any]]: ...

    def transaction(self) -> Any:
        """A context in which statements commit together."""

    def schema_transaction(self) -> Any:
        """A transaction that has the schema to itself (other processes wait)."""

    def table_names(self) -> set[str]: ...

    def create_table(self, name: str, columns: dict[str, type], key: tuple[str, ...]) -> None: ...

    def close(self) -> None: ...


def quoted(name: str) -> str:
    """An SQL identifier (table and column names come from the record models, never from input)."""
    return f'"{name}"'


class SqliteBackend:
    order_column = "rowid"

    def __init__(self, path: Path, read_only: bool) -> None:
        import sqlite_utils

        from .sqlite import connect

        self.where, self.lock = str(path), threading.RLock()
        self.db = sqlite_utils.Database(connect(path, read_only=read_only))
        self._open_transactions = 0
        """Statements inside `transaction()` commit with it, not one by one (the lock keeps other threads out)."""

    def execute(self, sql: str, args: list | tuple = ()) -> int:
        with self.lock:
            if self._open_transactions:
                return self.db.conn.execute(sql, list(args)).rowcount
            with self.db.conn:
                return self.db.conn.execute(sql, list(args)).rowcount

    def query(self, sql: str, args: list | tuple = ()) -> list[dict[str, Any]]:
        with self.lock:
            cursor = self.db.conn.execute(sql, list(args))
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.lock, self.db.conn:
            self._open_transactions += 1
            try:
                yield
            finally:
                self._open_transactions -= 1

    @contextmanager
    def schema_transaction(self) -> Iterator[None]:
        from .sqlite import immediate

        with self.lock, immediate(self.db.conn):
            self._open_transactions += 1
            try:
                yield
            finally:
                self._open_transactions -= 1

    def table_names(self) -> set[str]:
        return set(self.db.table_names())

    def create_table(self, name: str, columns: dict[str, type], key: tuple[str, ...]) -> None:
        self.db[name].create(columns, pk=key, if_not_exists=True)

    def close(self) -> None:
        with self.lock:
            self.db.conn.close()


_PG_TYPES = {int: "BIGINT", float: "DOUBLE PRECISION", str: "TEXT"}
SCHEMA = "spiral_traces"
"""The PostgreSQL schema the trace tables live in."""
_SCHEMA_LOCK = 0x5B1AA1  # an advisory lock id: processes creating the trace tables at once take turns


class PostgresBackend:
    order_column = "seq"

    def __init__(self, uri: str) -> None:
        import psycopg
        from psycopg.rows import dict_row

        from ..vocabulary.environment import DATABASE_ENV, redacted

        self.where, self.lock = f"PostgreSQL {redacted(uri)}", threading.RLock()
        try:
            self.conn = psycopg.connect(uri, autocommit=True, row_factory=dict_row, connect_timeout=10)
        except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SpiralError(f"cannot connect to PostgreSQL at {redacted(uri)} ({DATABASE_ENV}): {first}") from None
        with self.conn.transaction():  # the traces' own schema, beside LangGraph's checkpoint and store tables
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", [_SCHEMA_LOCK])
            self.conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        self.conn.execute(f"SET search_path TO {SCHEMA}")

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("?", "%s")

    def execute(self, sql: str, args: list | tuple = ()) -> int:
        with self.lock:
            return self.conn.execute(self._sql(sql), list(args)).rowcount

    def query(self, sql: str, args: list | tuple = ()) -> list[dict[str, Any]]:
        with self.lock:
            return [{k: v for k, v in row.items() if k != "seq"} for row in
                    self.conn.execute(self._sql(sql), list(args)).fetchall()]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.lock, self.conn.transaction():
            yield

    @contextmanager
    def schema_transaction(self) -> Iterator[None]:
        with self.lock, self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", [_SCHEMA_LOCK])
            yield

    def table_names(self) -> set[str]:
        rows = self.conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()").fetchall()
        return {r["tablename"] for r in rows}

    def create_table(self, name: str, columns: dict[str, type], key: tuple[str, ...]) -> None:
        cols = ", ".join(f"{quoted(c)} {_PG_TYPES.get(t, 'TEXT')}" for c, t in columns.items())
        self.conn.execute(f"CREATE TABLE IF NOT EXISTS {quoted(name)} (seq BIGINT GENERATED ALWAYS AS IDENTITY, "
                          f"{cols}, PRIMARY KEY ({', '.join(map(quoted, key))}))")

    def close(self) -> None:
        with self.lock:
            self.conn.close()
