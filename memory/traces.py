"""The trace database: every attempt of every episode, for people and for the trainer.

A plain SQLite file (sqlite-utils) readable with any SQLite tool. Rows are
keyed by (thread, plan version, sub-action, try), so a node that re-runs after
a crash and resume overwrites its own row instead of adding a duplicate.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import sqlite_utils


class TraceDB:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite_utils.Database(self.path)
        self.db.execute("PRAGMA journal_mode=WAL")

    def record_attempt(self, thread_id: str, row: dict[str, Any]) -> None:
        key = f"{thread_id}:{row['plan_version']}:{row['sub_action_index']}:{row['try_index']}"
        flat = {k: json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v for k, v in row.items()}
        self.db["attempts"].upsert({"id": key, "thread_id": thread_id, **flat}, pk="id", alter=True)

    def record_episode(self, thread_id: str, row: dict[str, Any]) -> None:
        flat = {k: json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v for k, v in row.items()}
        self.db["episodes"].upsert({"thread_id": thread_id, **flat}, pk="thread_id", alter=True)

    def attempts(self, thread_id: str) -> list[dict[str, Any]]:
        if "attempts" not in self.db.table_names():
            return []
        rows = self.db["attempts"].rows_where("thread_id = ?", [thread_id], order_by="rowid")
        return [{k: _maybe_json(v) for k, v in r.items()} for r in rows]


    def threads(self) -> list[dict[str, Any]]:
        if "episodes" not in self.db.table_names():
            return []
        return [dict(r) for r in self.db["episodes"].rows]

    def export(self, path: str | os.PathLike[str], fmt: str, thread_id: str | None = None) -> int:
        """Every attempt (of one thread, or all) as JSONL or Parquet; returns the row count."""
        if "attempts" not in self.db.table_names():
            rows: list[dict[str, Any]] = []
        elif thread_id:
            rows = self.attempts(thread_id)
        else:
            rows = [{k: _maybe_json(v) for k, v in r.items()} for r in self.db["attempts"].rows]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "jsonl":
            with open(path, "w") as fh:
                for row in rows:
                    fh.write(json.dumps(row, sort_keys=True, default=str) + "\n")
        elif fmt == "parquet":
            try:
                import pyarrow as pa
                import pyarrow.parquet as pq
            except ImportError:
                from ..tools.errors import InputError

                raise InputError("parquet export needs pyarrow (pip install pyarrow); or use --format jsonl") from None
            flat = [{k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in r.items()} for r in rows]
            pq.write_table(pa.Table.from_pylist(flat), path)
        else:
            from ..tools.errors import InputError

            raise InputError(f"unknown format {fmt!r}; choose jsonl or parquet")
        return len(rows)


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value
