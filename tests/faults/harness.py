"""Run `spiral` with one fault injected at a named point: a test double for crashes and full disks.

    SPIRAL_FAULT=<kind>:<n>:<action> python -m tests.faults.harness run --image ... --action ...

At the n-th event of `kind` (counted from 1) the process does `action`:

* kinds: `checkpoint` (a checkpoint row is committed in SQLite), `put` (a saver, SQLite or
  PostgreSQL, returned from saving a checkpoint: a node boundary), `writes` (a step's pending writes are
  committed), `trace` (a trace-DB transaction is committed), `lessons` (the reflective-memory store
  commits a lesson), `artifact` (an artifact file is written);
* actions: `kill` — SIGKILL in the middle of that write (SQLite: after its statements, at its COMMIT;
  artifact: half the bytes in the temp file); `after` — SIGKILL right after it (for `put`); `enospc` — the write fails as on a full disk; `slow` — the write first touches the
  file $SPIRAL_FAULT_MARK, then sleeps (the test kills the process from outside meanwhile).

With SPIRAL_FAULT_LOG=<file> it appends one JSON line per event (its kind and running count) and
per generator call (the sub-action, try and plan it was for), which is how a test counts the
work a resume did again. Nothing here is imported by SPIRAL itself.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

TRACE_TABLES = ("episodes", "plans", "sub_actions", "attempts", "lessons", "meta")
KIND, NUMBER, ACTION = (os.environ.get("SPIRAL_FAULT", "") + "::").split(":")[:3]
LOG = os.environ.get("SPIRAL_FAULT_LOG", "")
counts: dict[str, int] = {}
fired: list[str] = []


def due(kind: str, action: str) -> bool:
    """Whether the injected failure `action` of `kind` happens at the write about to start (once, at the
    n-th event of `kind` or, for a write some events do not pass through, the first one after it)."""
    if KIND != kind or ACTION != action or fired or counts.get(kind, 0) + 1 < int(NUMBER):
        return False
    fired.append(kind)
    return True


def log(record: dict) -> None:
    if LOG:
        with open(LOG, "a") as fh:
            fh.write(json.dumps(record) + "\n")


def event(kind: str) -> str:
    """Count an event; the action to take now ('' for none)."""
    counts[kind] = counts.get(kind, 0) + 1
    log({"event": kind, "n": counts[kind]})
    return ACTION if kind == KIND and str(counts[kind]) == NUMBER else ""


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def disk_full_sqlite() -> None:
    raise sqlite3.OperationalError("database or disk is full")


def patch_saver(saver: type) -> None:
    """Faults around a saver's commits: a full disk or a slow disk before it, SIGKILL right after it."""
    real_put, real_put_writes = saver.put, saver.put_writes

    def put(self, *args, **kwargs):
        if due("checkpoint", "enospc"):
            disk_full_sqlite()
        if due("checkpoint", "slow"):
            Path(os.environ["SPIRAL_FAULT_MARK"]).touch()
            time.sleep(30)
        result = real_put(self, *args, **kwargs)
        if event("put") == "after":  # a checkpoint was saved, in whichever database: a node boundary
            die()
        return result

    def put_writes(self, *args, **kwargs):
        if due("writes", "enospc"):
            disk_full_sqlite()
        return real_put_writes(self, *args, **kwargs)

    saver.put, saver.put_writes = put, put_writes


def install() -> None:
    from spiral.memory import blobs, checkpoints, durable, sqlite, sqlite_saver, store, traces

    real_connect = sqlite.connect

    def traced_connect(path, **kwargs):
        conn = real_connect(path, **kwargs)
        touched: set[str] = set()

        def on_statement(sql: str) -> None:
            head = sql.lstrip().upper()
            for table in ("CHECKPOINTS", "WRITES", "STORE", *(t.upper() for t in TRACE_TABLES)):
                if head.startswith(("INSERT", "UPDATE", "REPLACE")) and f" {table}" in head.replace('"', " "):
                    touched.add(table)
            if head.startswith("COMMIT") and touched:
                kinds = {"checkpoint" if "CHECKPOINTS" in touched else "writes" if "WRITES" in touched
                         else "lessons" if "STORE" in touched else "trace"}
                touched.clear()
                for kind in kinds:
                    if event(kind) == "kill":
                        die()

        conn.set_trace_callback(on_statement)
        return conn

    sqlite.connect = traced_connect
    checkpoints.connect = traced_connect
    traces.connect = traced_connect
    store.connect = traced_connect

    for saver in (checkpoints.WaitsForArtifacts, sqlite_saver.SpiralSqliteSaver):  # SPIRAL's savers
        patch_saver(saver)

    real_upsert = traces.TraceDB._upsert

    def upsert(self, record):
        if due("trace", "enospc"):
            disk_full_sqlite()
        return real_upsert(self, record)

    traces.TraceDB._upsert = upsert

    real_write = blobs.write_file

    def write_file(target: Path, data: bytes, durable: bool) -> None:
        action = event("artifact")
        if action == "enospc":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))
        if action == "kill":
            tmp = target.parent / f".tmp-{os.getpid()}-partial-{target.name}"
            tmp.write_bytes(data[: len(data) // 2])
            die()
        real_write(target, data, durable)

    blobs.write_file = durable.write_file = write_file  # direct writes and the background writer's

    from spiral.nodes import generate

    real_seed = generate.derive_seed

    def derive_seed(seed: int, sub_action: int, try_index: int, plan_version: int, sample: int = 0) -> int:
        log({"generate": [sub_action, try_index, plan_version]})
        return real_seed(seed, sub_action, try_index, plan_version, sample)

    generate.derive_seed = derive_seed


if __name__ == "__main__":
    install()
    from spiral.shell.cli import main

    sys.exit(main(sys.argv[1:]))
