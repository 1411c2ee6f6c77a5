"""PostgreSQL persistence for a LangGraph server, configured by the environment.

A LangGraph server takes a custom checkpointer and store from langgraph.json
(`checkpointer.path`, `store.path`) or, on the server image, from the
`LANGGRAPH_CHECKPOINTER` / `LANGGRAPH_STORE` environment variables. Point them
here and the server keeps SPIRAL's checkpoints and reflective-memory lessons in
the PostgreSQL named by `SPIRAL_DATABASE_URI`, through langgraph-checkpoint-postgres
(the same tables the `spiral` CLI uses with that variable, so a thread started
on the server can be inspected or resumed with `spiral history` / `spiral resume`):

    "checkpointer": {"path": "./memory/server_persistence.py:checkpointer"},
    "store": {"path": "./memory/server_persistence.py:store"}

One connection pool per process (`SPIRAL_DATABASE_POOL`, default 10
connections). Loaded by file path, so imports are absolute.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from spiral.tools.errors import SpiralError
from spiral.vocabulary.environment import DATABASE_ENV, database_uri, environment, redacted


def _uri() -> str:
    uri = database_uri()
    if not uri:
        raise SpiralError(f"the server's langgraph.json asks for PostgreSQL persistence but {DATABASE_ENV} is not set")
    return uri


@asynccontextmanager
async def _pool() -> AsyncIterator[Any]:
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    uri = _uri()
    size = environment().database_pool_size
    pool = AsyncConnectionPool(uri, min_size=1, max_size=size, open=False,
                               kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row})
    try:
        await pool.open(wait=True, timeout=30)
    except Exception as exc:
        raise SpiralError(f"cannot connect to PostgreSQL at {redacted(uri)} ({DATABASE_ENV}): {exc}") from None
    try:
        yield pool
    finally:
        await pool.close()


@asynccontextmanager
async def checkpointer() -> AsyncIterator[Any]:
    """An AsyncPostgresSaver on SPIRAL_DATABASE_URI (tables created on first use)."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    async with _pool() as pool:
        saver = AsyncPostgresSaver(pool)
        await saver.setup()
        yield saver


@asynccontextmanager
async def store() -> AsyncIterator[Any]:
    """An AsyncPostgresStore on SPIRAL_DATABASE_URI. No pgvector needed: without a vector index,
    recall ranks the lessons in Python with the same embeddings (memory/store.py)."""
    from langgraph.store.postgres.aio import AsyncPostgresStore

    async with _pool() as pool:
        lessons = AsyncPostgresStore(pool)
        await lessons.setup()
        yield lessons
