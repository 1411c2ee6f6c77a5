"""The trace database: typed records of every episode, plan, sub-action, attempt and lesson.

A plain SQLite file, readable with any SQLite tool, and the trainer's only
input. Nodes record through the methods here and never touch tables; the
tables and their columns are created from the record models, and the schema
version is kept in the file (`meta`). A database written before the records
were typed is migrated on open: its tables are renamed `<table>_v1` (kept,
browsable) and the typed tables start empty.

Rows are keyed so that a node that re-runs after a crash and resume overwrites
its own row instead of adding a duplicate. One connection per database per
process is shared by every node (a lock serialises writers from threads).
Commits do not wait for the disk (WAL with `synchronous=NORMAL`): a process
crash loses nothing, a power cut may lose the newest rows but never the
database; the checkpoints, not the traces, are what a run resumes from.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from ..tools.errors import InputError, ResumeError
from ..tools.paths import writable_file, write_atomic
from ..vocabulary.trace_records import (
    RECORDS,
    AttemptKey,
    AttemptRecord,
    CriticKind,
    EpisodeRecord,
    Judgement,
    Lesson,
    LessonRecord,
    PlanRecord,
    Record,
    SubActionRecord,
    Verdict,
    column_value,
)
from .folders import is_writable
from .trace_sql import PostgresBackend, SqlBackend, SqliteBackend
from .trace_sql import quoted as _q

__all__ = ["SCHEMA_VERSION", "AttemptKey", "AttemptRecord", "CriticKind", "EpisodeRecord", "Judgement", "Lesson",
           "LessonRecord", "PlanRecord", "Record", "SubActionRecord", "TraceDB", "Verdict"]
SCHEMA_VERSION = 3
R = TypeVar("R", bound=Record)

class TraceDB:
    """The typed trace database of one workspace (`TraceDB.open(path)` shares one connection per process), or
    of every workspace that shares a PostgreSQL database (`TraceDB.open_postgres(uri)`)."""

    _open: ClassVar[dict[tuple[int, str], TraceDB]] = {}
    _open_lock: ClassVar[threading.Lock] = threading.Lock()
    _holders: ClassVar[dict[tuple[int, str], int]] = {}

    def __init__(self, path: str | os.PathLike[str] | None = None, read_only: bool = False, *,
                 backend: SqlBackend | None = None) -> None:
        if backend is None:
            if path is None:
                raise ValueError("a trace database needs a path or a backend")
            self.path = Path(path)
            if not read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            backend = SqliteBackend(self.path, read_only)
        else:
            self.path = Path(backend.where)
        self.sql = backend
        self.lock = backend.lock
        with self.lock:
            if read_only:
                self._check_readable()
            else:
                self._migrate()

    @classmethod
    def postgres(cls, uri: str) -> TraceDB:
        """A new connection to the trace tables in PostgreSQL (created on first use)."""
        return cls(backend=PostgresBackend(uri))

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> TraceDB:
        """The process's connection to the database at `path` (opened on first use)."""
        key = (os.getpid(), os.path.abspath(path))
        with cls._open_lock:
            if key not in cls._open:
                cls._open[key] = cls(path)
            return cls._open[key]

    @classmethod
    def open_postgres(cls, uri: str) -> TraceDB:
        """The process's connection to the trace tables in PostgreSQL (opened on first use)."""
        key = (os.getpid(), uri)
        with cls._open_lock:
            if key not in cls._open:
                cls._open[key] = cls.postgres(uri)
            return cls._open[key]

    @classmethod
    def for_reading(cls, path: str | os.PathLike[str]) -> TraceDB:
        """The database to read: opened (and migrated) as usual in a writable folder, read-only in a
        read-only one."""
        path = Path(path)
        if not path.exists():
            raise ResumeError(f"no trace database in {path.parent}; pass the --workspace the runs used")
        return cls(path, read_only=not is_writable(path.parent))

    @classmethod
    def hold(cls, path: str | os.PathLike[str]) -> TraceDB:
        """`open`, for a user that will `release` it (a session): the connection stays open while anyone
        holds it, so sessions in several threads of one process can end in any order."""
        db = cls.open(path)
        with cls._open_lock:
            key = (os.getpid(), os.path.abspath(path))
            cls._holders[key] = cls._holders.get(key, 0) + 1
        return db

    @classmethod
    def release(cls, path: str | os.PathLike[str]) -> None:
        """Let go of a `hold`; the last holder closes this process's connection to the database."""
        key = (os.getpid(), os.path.abspath(path))
        with cls._open_lock:
            cls._holders[key] = cls._holders.get(key, 1) - 1
            if cls._holders[key] > 0:
                return
            cls._holders.pop(key)
            db = cls._open.pop(key, None)
        if db is not None:
            db.close()

    def close(self) -> None:
        self.sql.close()

    def __enter__(self) -> TraceDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema ------------------------------------------------------------
    def _migrate(self) -> None:
        """Create or migrate the tables, once, however many processes open a fresh database at once."""
        with self.sql.schema_transaction():
            tables = self.sql.table_names()
            version = self._version() if "meta" in tables else (1 if tables & {r.table for r in RECORDS} else 0)
            if version > SCHEMA_VERSION:
                raise InputError(f"{self.path} has trace schema {version}, newer than this SPIRAL "
                                 f"({SCHEMA_VERSION}); upgrade SPIRAL or use another workspace")
            if version == SCHEMA_VERSION:
                return
            if version == 1:  # untyped tables from before: keep them aside, start the typed ones
                for name in sorted(tables & {r.table for r in RECORDS}):
                    self.sql.execute(f"ALTER TABLE {_q(name)} RENAME TO {_q(name + '_v1')}")
            if version == 2:  # attempts gain a sample index in their key (group rollouts): copy them over
                self._attempts_v2_to_v3()
            tables = self.sql.table_names()
            for record in RECORDS:
                if record.table not in tables:
                    self.sql.create_table(record.table, record.columns(), record.key)
            self.sql.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            self.sql.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE "
                             "SET value = excluded.value", [str(SCHEMA_VERSION)])

    def _attempts_v2_to_v3(self) -> None:
        """A SQLite file from before group rollouts (PostgreSQL traces start at schema 3)."""
        self.sql.execute("ALTER TABLE attempts RENAME TO attempts_v2")
        self.sql.create_table("attempts", AttemptRecord.columns(), AttemptRecord.key)
        old = [row["name"] for row in self.sql.query("PRAGMA table_info(attempts_v2)")]
        shared = ", ".join(_q(c) for c in old if c in AttemptRecord.model_fields)
        self.sql.execute(f"INSERT INTO attempts ({shared}, sample, group_size, chosen) "
                         f"SELECT {shared}, 0, 1, 1 FROM attempts_v2")
        self.sql.execute("DROP TABLE attempts_v2")

    def _check_readable(self) -> None:
        version = self._version() if "meta" in self.sql.table_names() else 1
        if version != SCHEMA_VERSION:
            raise InputError(f"{self.path} has trace schema {version} and is read-only here; open it once "
                             f"from a writable folder to migrate it to schema {SCHEMA_VERSION}")

    def _version(self) -> int:
        rows = self.sql.query("SELECT value FROM meta WHERE key = ?", ["schema_version"])
        return int(rows[0]["value"]) if rows else 0

    # -- writing -------------------------------------------------------------
    def _upsert(self, record: Record) -> None:
        row = record.row()
        updates = ", ".join(f"{_q(k)} = excluded.{_q(k)}" for k in row if k not in record.key)
        sql = (f"INSERT INTO {_q(record.table)} ({', '.join(map(_q, row))}) VALUES ({', '.join('?' * len(row))}) "
               f"ON CONFLICT ({', '.join(map(_q, record.key))}) DO UPDATE SET {updates}")
        self.sql.execute(sql, list(row.values()))

    def record_episode(self, record: EpisodeRecord) -> None:
        self._upsert(record)

    def record_plan(self, record: PlanRecord) -> None:
        self._upsert(record)

    def record_sub_action(self, record: SubActionRecord) -> None:
        self._upsert(record)

    def record_attempt(self, record: AttemptRecord) -> None:
        self._upsert(record)

    def record_judgement(self, key: AttemptKey, judgement: Judgement) -> None:
        self._update("attempts", key, Judgement.model_validate(judgement).model_dump())

    def record_review(self, key: AttemptKey, decision: Literal["approve", "reject"], feedback: str,
                      verdict: Judgement) -> None:
        """A person's decision becomes the attempt's label; the critic's verdict stays beside it."""
        with self.lock:
            previous = self.attempt(key)
            critic_passed = None if previous is None else \
                previous.passed if previous.review == "" else previous.critic_passed
            self._update("attempts", key, {**verdict.model_dump(exclude={"critique_s", "evidence"}),
                                           "review": decision, "review_feedback": feedback,
                                           "critic_passed": critic_passed})

    def record_choice(self, key: AttemptKey) -> None:
        """Mark `key`'s sample as the one its try went on with, and its group's other samples as not."""
        key = AttemptKey(*key)
        self.sql.execute("UPDATE attempts SET chosen = CASE WHEN sample = ? THEN 1 ELSE 0 END WHERE thread_id = ? AND "
                         "plan_version = ? AND sub_action_index = ? AND try_index = ?",
                         [key.sample, key.thread_id, key.plan_version, key.sub_action_index, key.try_index])

    def add_usage(self, key: AttemptKey, usage: dict[str, float | str]) -> None:
        """Token usage and latency of an LLM call made for this attempt (critic, refiner)."""
        with self.lock:
            current = self.attempt(key)
            merged = {**(current.usage if current is not None else {}), **usage}
            self._update("attempts", key, {"usage": merged})

    def record_lessons(self, thread_id: str, lessons: Iterable[Lesson]) -> None:
        rows = [LessonRecord(thread_id=thread_id, **lesson.model_dump()) for lesson in lessons]
        with self.sql.transaction():
            for row in rows:
                self._upsert(row)

    def _update(self, table: str, key: tuple, values: dict[str, Any]) -> None:
        record = next(r for r in RECORDS if r.table == table)
        flat = {k: column_value(v) for k, v in values.items()}
        sql = (f"UPDATE {_q(table)} SET {', '.join(f'{_q(k)} = ?' for k in flat)} "
               f"WHERE {' AND '.join(f'{_q(k)} = ?' for k in record.key)}")
        if self.sql.execute(sql, [*flat.values(), *key]) != 1:
            raise InputError(f"no {table} row {tuple(key)} in {self.path} to update")

    # -- reading -------------------------------------------------------------
    def _read(self, cls: type[R], where: str = "", args: list | None = None) -> list[R]:
        condition = f" WHERE {where}" if where else ""
        rows = self.sql.query(f"SELECT * FROM {_q(cls.table)}{condition} ORDER BY {self.sql.order_column}", args or [])
        return [cls.from_row(r) for r in rows]

    def episodes(self) -> list[EpisodeRecord]:
        return self._read(EpisodeRecord)

    def episode(self, thread_id: str) -> EpisodeRecord | None:
        found = self._read(EpisodeRecord, "thread_id = ?", [thread_id])
        return found[0] if found else None

    def plans(self, thread_id: str) -> list[PlanRecord]:
        return self._read(PlanRecord, "thread_id = ?", [thread_id])

    def sub_actions(self, thread_id: str) -> list[SubActionRecord]:
        return self._read(SubActionRecord, "thread_id = ?", [thread_id])

    def attempts(self, thread_id: str | None = None) -> list[AttemptRecord]:
        """Every attempt of a thread (or of all threads), in the order they were made."""
        if thread_id is None:
            return self._read(AttemptRecord)
        return self._read(AttemptRecord, "thread_id = ?", [thread_id])

    def attempt(self, key: AttemptKey) -> AttemptRecord | None:
        found = self._read(AttemptRecord, "thread_id = ? and plan_version = ? and sub_action_index = ? "
                           "and try_index = ? and sample = ?", list(AttemptKey(*key)))
        return found[0] if found else None

    def lessons(self, thread_id: str) -> list[LessonRecord]:
        return self._read(LessonRecord, "thread_id = ?", [thread_id])

    def export(self, path: str | os.PathLike[str], fmt: str, thread_id: str | None = None) -> int:
        """Every attempt (of one thread, or all) as JSONL or Parquet; returns the row count."""
        if fmt not in ("jsonl", "parquet"):
            raise InputError(f"unknown format {fmt!r}; choose jsonl or parquet")
        path = writable_file(path, "--out")
        rows = [a.model_dump() for a in self.attempts(thread_id)]
        if fmt == "jsonl":
            write_atomic(path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows).encode())
            return len(rows)
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise InputError("parquet export needs pyarrow (pip install pyarrow); or use --format jsonl") from None
        flat = [{k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in r.items()} for r in rows]
        buf = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pylist(flat), buf)
        write_atomic(path, buf.getvalue().to_pybytes())
        return len(rows)
