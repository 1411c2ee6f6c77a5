"""Checkpointers: SQLite by default (a file in the workspace), so a killed run resumes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.sqlite import SqliteSaver


def checkpoint_path(workspace: str | Path) -> Path:
    return Path(workspace) / "checkpoints.sqlite"


@contextmanager
def sqlite_checkpointer(workspace: str | Path, serde: SerializerProtocol | None = None) -> Iterator[SqliteSaver]:
    """A SqliteSaver on `workspace/checkpoints.sqlite`; every superstep is committed.

    Pass the graph's `serde` (graph.workflow.checkpoint_serde) so that the state's
    pydantic types are allowed back out of the checkpoint explicitly."""
    path = checkpoint_path(workspace)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        saver = SqliteSaver(conn, serde=serde)
        saver.setup()
        yield saver
    finally:
        conn.close()
