"""Checkpointers and the reflective-memory store: SQLite files in the workspace by default,
PostgreSQL when `SPIRAL_DATABASE_URI` is set (self-hosting: many processes, one database).

A killed run resumes from its last saved step, from any process that opens the
same workspace (SQLite) or database (PostgreSQL). SPIRAL's savers wait for the
artifacts a checkpoint points at to reach the disk before committing it
(memory/artifacts.py, durability), so the session driver's artifact writes
need not wait themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.sqlite import SqliteSaver

from ..tools.errors import SpiralError
from ..vocabulary.environment import DATABASE_ENV, database_uri, redacted
from .durable import wait_for_disk
from .sqlite import connect, retry_busy
from .sqlite_saver import SpiralSqliteSaver



def checkpoint_path(workspace: str | Path) -> Path:
    return Path(workspace) / "checkpoints.sqlite"


def has_checkpoints(workspace: str | Path) -> bool:
    """Whether there is anything to resume: a database is configured, or the workspace has its file."""
    return bool(database_uri()) or checkpoint_path(workspace).exists()


def where(workspace: str | Path) -> str:
    """Where this process keeps checkpoints, in words."""
    uri = database_uri()
    return f"PostgreSQL {redacted(uri)}" if uri else str(workspace)


class WaitsForArtifacts:
    """Commits a checkpoint (or a step's writes) only once the artifacts written before it are on disk
    (the PostgreSQL saver; SpiralSqliteSaver does the same itself)."""

    def put(self, *args: Any, **kwargs: Any) -> Any:
        wait_for_disk()
        return super().put(*args, **kwargs)  # type: ignore[misc]

    def put_writes(self, *args: Any, **kwargs: Any) -> Any:
        wait_for_disk()
        return super().put_writes(*args, **kwargs)  # type: ignore[misc]


@contextmanager
def sqlite_checkpointer(workspace: str | Path, serde: SerializerProtocol | None = None,
                        read_only: bool = False) -> Iterator[SqliteSaver]:
    """A SqliteSaver on `workspace/checkpoints.sqlite` (read-only: for `history` on a read-only folder).

    Pass the graph's `serde` (graph.workflow.checkpoint_serde) so that the state's
    pydantic types are allowed back out of the checkpoint explicitly."""
    path = checkpoint_path(workspace)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path, read_only=read_only)
    try:
        saver = SpiralSqliteSaver(conn, serde=serde)
        if read_only:
            saver.is_setup = True  # the tables are there (or reading finds nothing); creating them would write
        else:
            retry_busy(saver.setup)
        yield saver
    finally:
        conn.close()


@contextmanager
def postgres_connection(uri: str) -> Iterator[Any]:
    """One autocommit psycopg connection, as langgraph's Postgres savers want it."""
    import psycopg
    from psycopg.rows import dict_row

    try:
        conn = psycopg.Connection.connect(uri, autocommit=True, prepare_threshold=0, row_factory=dict_row,
                                          connect_timeout=10)
    except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:  # unreachable, or a URL psycopg cannot read
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpiralError(f"cannot connect to PostgreSQL at {redacted(uri)} ({DATABASE_ENV}): {first}") from None
    with conn:
        yield conn


def _postgres_modules():
    try:
        from langgraph.checkpoint.postgres import PostgresSaver
        from langgraph.store.postgres import PostgresStore
    except ImportError:
        raise SpiralError(f"{DATABASE_ENV} is set but the PostgreSQL extra is not installed: "
                          "pip install 'spiral-actwm[postgres]'") from None
    return PostgresSaver, PostgresStore


@contextmanager
def open_checkpointer(workspace: str | Path, serde: SerializerProtocol | None = None,
                      read_only: bool = False) -> Iterator[BaseCheckpointSaver]:
    """PostgresSaver when SPIRAL_DATABASE_URI is set (tables created on first use), else SQLite."""
    uri = database_uri()
    if not uri:
        with sqlite_checkpointer(workspace, serde, read_only) as saver:
            yield saver
        return
    postgres_saver, _ = _postgres_modules()
    saver_class = type("SpiralPostgresSaver", (WaitsForArtifacts, postgres_saver), {})
    with postgres_connection(uri) as conn:
        saver = saver_class(conn, serde=serde)
        saver.setup()
        yield saver


@contextmanager
def open_store(workspace: str | Path) -> Iterator[Any]:
    """The reflective-memory store: PostgresStore when SPIRAL_DATABASE_URI is set, else SQLite.

    No pgvector is needed: without a vector index the lessons are ranked in Python with the
    same embeddings (memory/store.py), which is quick for the few hundred lessons a lab keeps."""
    from .store import embedding_index, sqlite_store

    uri = database_uri()
    if not uri:
        with sqlite_store(workspace) as store:
            yield store
        return
    _, postgres_store = _postgres_modules()
    with postgres_connection(uri) as conn:
        store = postgres_store(conn)
        store.setup()
        store.spiral_embed = embedding_index()["embed"]
        yield store
