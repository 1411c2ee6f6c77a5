"""The fault-injection suite's machinery: run `spiral demo` under the harness, break it at a named
point, recover it as a user would, and compare everything with an uninterrupted run.

A kill point is survived when the recovered run's summary.json and frames.npy are byte-identical to
the reference run's, no sub-action accepted before the fault was generated again, every trace table
holds exactly the reference's rows (none lost, none twice), and every store reads back: the
checkpoints (state and history), the artifacts the state points at, the trace records.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

HARNESS = Path(__file__).with_name("harness.py")
THREAD = "faults"
DEMO = ["demo", "--no-write-video", "--thread-id", THREAD]
TRACE_TABLES = ("episodes", "plans", "sub_actions", "attempts", "lessons")


@dataclass
class Outcome:
    """What one kill point did and what recovering from it showed."""

    point: str
    problems: list[str] = field(default_factory=list)
    regenerated_accepted: int = 0
    regenerated_attempts: int = 0

    @property
    def survived(self) -> bool:
        return not self.problems


@dataclass
class Reference:
    counts: Counter
    generator_calls: int
    summary: bytes
    frames: bytes
    rows: dict[str, int]
    extra: tuple[str, ...] = ()
    """Flags the run was made with (e.g. `--memory reflective`); recoveries use them too."""


def harness(args: list[str], folder: Path, fault: str = "", log: Path | None = None, mark: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.Popen:
    env = {**os.environ, **(env or {}), "SPIRAL_FAULT": fault, "SPIRAL_FAULT_LOG": str(log or ""),
           "SPIRAL_FAULT_MARK": str(mark or ""), "PYTHONUNBUFFERED": "1"}
    env.pop("SPIRAL_HOME", None)
    return subprocess.Popen([sys.executable, str(HARNESS), *args], cwd=folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen, timeout: float = 180) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def demo_args(folder: Path, *extra: str) -> list[str]:
    return [*DEMO, "--workspace", str(folder / "ws"), "--out", str(folder / "out"), *extra]


def read_log(path: Path) -> tuple[Counter, list[tuple[int, int, int]]]:
    counts: Counter = Counter()
    calls: list[tuple[int, int, int]] = []
    if path.exists():
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if "event" in record:
                counts[record["event"]] += 1
            else:
                calls.append(tuple(record["generate"]))
    return counts, calls


def trace_rows(workspace: Path) -> dict[str, int]:
    """Rows per trace table, wherever the workspace keeps its traces (SQLite, or PostgreSQL when
    SPIRAL_DATABASE_URI is set in this process), and the reflective store's lessons."""
    import sqlite3

    from spiral.memory.workspace import Workspace

    with Workspace(workspace).reading_traces() as db:
        rows = {t: db.sql.query(f'select count(*) as n from "{t}"')[0]["n"] for t in TRACE_TABLES}
    if (workspace / "memory.sqlite").exists():  # the reflective-memory store's lessons
        conn = sqlite3.connect(f"file:{workspace / 'memory.sqlite'}?mode=ro", uri=True)
        try:
            rows["store"] = conn.execute("select count(*) from store").fetchone()[0]
        finally:
            conn.close()
    return rows


def reference_run(folder: Path, *extra: str, env: dict[str, str] | None = None) -> Reference:
    folder.mkdir(parents=True, exist_ok=True)
    code, out, err = finish(harness(demo_args(folder, *extra), folder, log=folder / "log.jsonl", env=env))
    assert code == 0, err
    counts, calls = read_log(folder / "log.jsonl")
    with environment(env):
        rows = trace_rows(folder / "ws")
    return Reference(counts=counts, generator_calls=len(calls), summary=(folder / "out" / "summary.json").read_bytes(),
                     frames=(folder / "out" / "frames.npy").read_bytes(), rows=rows, extra=extra)


def cursor_of(workspace: Path) -> int | None:
    """Sub-actions accepted in the last saved checkpoint (None: no thread saved yet)."""
    from spiral.graph.session import Session

    with Session(workspace) as session:
        state = session.state(THREAD)
    return None if state is None or state.settings is None else state.cursor


def check_stores(workspace: Path) -> list[str]:
    """Everything a later command reads back: the checkpoints, the artifacts they point at, the traces."""
    from spiral.graph.session import Session
    from spiral.memory.artifacts import ArtifactStore
    from spiral.memory.workspace import Workspace

    problems = []
    try:
        with Session(workspace) as session:
            state = session.state(THREAD)
            history = session.history(THREAD)
        assert state is not None and state.summary and len(history) > 2
        store = ArtifactStore(workspace / "artifacts")
        for attempt in state.attempts:
            assert store.get_frames(attempt.segment).ndim == 4
            store.get_frame(attempt.last_frame)
        with Workspace(workspace).reading_traces() as db:
            assert db.episode(THREAD) is not None and db.attempts(THREAD)
    except Exception as exc:  # noqa: BLE001 — any failure to read back is the finding
        problems.append(f"stores unreadable: {type(exc).__name__}: {exc}")
    return problems


@contextmanager
def environment(env: dict[str, str] | None) -> Iterator[None]:
    """`env` in this process too, for the in-process reads (one kill point at a time when it is used)."""
    saved = {k: os.environ.get(k) for k in env or {}}
    os.environ.update(env or {})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def recover(folder: Path, point: str, reference: Reference, killed_calls: int,
            env: dict[str, str] | None = None) -> Outcome:
    """Resume as the CLI tells a user to (start again if nothing was saved), then compare."""
    with environment(env):
        return _recover(folder, point, reference, killed_calls, env)


def _recover(folder: Path, point: str, reference: Reference, killed_calls: int, env: dict[str, str] | None) -> Outcome:
    outcome = Outcome(point)
    workspace = folder / "ws"
    cursor = cursor_of(workspace)
    log = folder / "resume.jsonl"
    args = ["resume", THREAD, "--workspace", str(workspace)] if cursor is not None else \
        demo_args(folder, *reference.extra)
    code, out, err = finish(harness(args, folder, log=log, env=env))
    if code != 0:
        outcome.problems.append(f"recovery exited {code}: {err.strip().splitlines()[-1:] or out[-200:]}")
        return outcome
    _, calls = read_log(log)
    outcome.regenerated_accepted = sum(1 for sub_action, _, _ in calls if cursor is not None and sub_action < cursor)
    outcome.regenerated_attempts = killed_calls + len(calls) - reference.generator_calls
    if outcome.regenerated_accepted:
        outcome.problems.append(f"{outcome.regenerated_accepted} accepted segments generated again")
    for name, expected in (("summary.json", reference.summary), ("frames.npy", reference.frames)):
        path = folder / "out" / name
        if not path.exists() or path.read_bytes() != expected:
            outcome.problems.append(f"{name} differs from the uninterrupted run's")
    rows = trace_rows(workspace)
    if rows != reference.rows:
        outcome.problems.append(f"trace rows {rows} != {reference.rows}")
    outcome.problems += check_stores(workspace)
    return outcome


def break_and_recover(root: Path, point: str, reference: Reference, env: dict[str, str] | None = None) -> Outcome:
    """`point` is `kind:n:action` (see harness.py); `slow` is killed from outside during the write.
    `env` (a PostgreSQL database for this point) goes to every process, this one included."""
    folder = root / point.replace(":", "-")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    action = point.split(":")[2]
    mark = folder / "in-slow-write"
    process = harness(demo_args(folder, *reference.extra), folder, fault=point, log=folder / "fault.jsonl", mark=mark,
                      env=env)
    if action == "slow":
        deadline = time.monotonic() + 120
        while not mark.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    code, _, err = finish(process)
    lines = [line for line in err.splitlines() if line.strip()]
    if action == "enospc":
        if code != 1 or len(lines) != 1 or "disk holding" not in lines[0]:
            return Outcome(point, [f"a full disk should be one line and exit 1; got {code}: {lines[-3:]}"])
    elif code != -signal.SIGKILL:
        return Outcome(point, [f"expected the fault to kill the run; it exited {code}: {lines[-2:]}"])
    _, killed_calls = read_log(folder / "fault.jsonl")
    return recover(folder, point, reference, len(killed_calls), env)


def report(title: str, outcomes: list[Outcome]) -> str:
    survived = sum(o.survived for o in outcomes)
    lines = [f"{title}: {survived}/{len(outcomes)} kill points survived; regenerated accepted segments: "
             f"{sum(o.regenerated_accepted for o in outcomes)}; attempts generated again (unsaved work): "
             f"{sum(o.regenerated_attempts for o in outcomes)}"]
    lines += [f"  FAILED {o.point}: {'; '.join(o.problems)}" for o in outcomes if not o.survived]
    return "\n".join(lines)
