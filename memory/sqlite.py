"""SQLite connections for the workspace's files (checkpoints, traces, lessons), made the same way.

Many processes and threads share one workspace (8 `spiral run`s, a bench's
workers), so every connection waits for the others rather than failing: WAL
journaling (readers never block the writer), a busy timeout, and schema
changes inside `BEGIN IMMEDIATE` (a deferred transaction that reads the schema
and then writes cannot wait for the lock: SQLite answers "database is locked"
at once to avoid a deadlock). A workspace on a read-only folder is opened
read-only, so `traces` and `history` still work there.

Commits do not wait for the disk (`synchronous=NORMAL`): in WAL mode that is
atomic and durable across a process crash (kill -9 loses nothing); a power cut
may roll back the newest commits, never corrupt the file. A rolled-back
checkpoint only means its step runs again on resume, and the artifacts every
surviving checkpoint points at were fsynced before it committed
(memory/checkpoints.py). Waiting for the disk at every commit cost the loop
4 ms per generator call.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..tools.errors import DAMAGED_SQLITE, ResumeError, damaged_database

BUSY_TIMEOUT_S = 60.0
"""How long a writer waits for another process's transaction before giving up."""


def connect(path: str | Path, *, read_only: bool = False, autocommit: bool = False) -> sqlite3.Connection:
    """A connection shared across threads (callers serialise their writes); WAL set up when writable."""
    path = Path(path)
    if read_only:
        return _connect_read_only(path)
    try:
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=BUSY_TIMEOUT_S,
                               isolation_level=None if autocommit else "")
        retry_busy(lambda: conn.execute("PRAGMA journal_mode=WAL"))
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and not any(k in str(exc).lower() for k in DAMAGED_SQLITE):
            raise
        raise damaged_database(path, exc) from None
    return conn


def _connect_read_only(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise ResumeError(f"no {path.name} in {path.parent}")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.DatabaseError as exc:
        if not isinstance(exc, sqlite3.OperationalError) or any(k in str(exc).lower() for k in DAMAGED_SQLITE):
            raise damaged_database(path, exc) from None
        # a WAL database closed cleanly has no -shm file, and a read-only folder cannot get one;
        # with no -wal file either, everything is in the main file and "immutable" reads it exactly
        if Path(f"{path}-wal").exists():
            raise
        return sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)


def retry_busy(call, attempts: int = 50) -> None:
    """Switching to WAL takes an exclusive lock for a moment; another process opening the file at
    the same instant makes it answer "locked" without waiting: try again."""
    for attempt in range(attempts):
        try:
            call()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.02 * (attempt + 1))


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction that takes the write lock first (waiting up to the busy timeout)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
