"""Many writers on one fresh workspace: 8 `spiral run` processes, 8 session threads in one process,
and 8 processes racing to create and fill a trace database. No run may fail with "database is
locked", and every row must be there exactly once."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from spiral.graph.session import Session
from spiral.memory.traces import TraceDB
from spiral.vocabulary.config import RunContext

pytestmark = pytest.mark.e2e
ACTION = "put the red ball in the bowl then stack the blue cube on the green cube"
WRITERS, ROUNDS = 8, 2


def _rows(workspace: Path) -> dict[str, list]:
    db = TraceDB(workspace / "traces.sqlite", read_only=True)
    try:
        return {"episodes": sorted(e.thread_id for e in db.episodes()),
                "attempts": sorted((a.thread_id, a.plan_version, a.sub_action_index, a.try_index)
                                   for a in db.attempts())}
    finally:
        db.close()


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_eight_processes_run_on_one_fresh_workspace(tmp_path, scene_png, round_):
    workspace = tmp_path / "ws"
    runs = [subprocess.Popen([sys.executable, "-m", "spiral.shell.cli", "run", "--image", str(scene_png),
                              "--action", ACTION, "--difficulty", "easy", "--no-write-video", "--seed", "3",
                              "--thread-id", f"p{i}", "--workspace", str(workspace)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(WRITERS)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in runs]
    failures = [err.strip().splitlines()[-1:] for code, err in results if code != 0]
    assert failures == []
    rows = _rows(workspace)
    assert rows["episodes"] == [f"p{i}" for i in range(WRITERS)]
    per_thread = {t: sum(1 for a in rows["attempts"] if a[0] == t) for t in rows["episodes"]}
    assert len(set(per_thread.values())) == 1  # the same seed and task: the same attempts in every run
    assert len(rows["attempts"]) == len(set(rows["attempts"]))
    with Session(workspace) as session:
        states = [session.state(f"p{i}") for i in range(WRITERS)]
    assert all(s is not None and s.status == "done" for s in states)


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_eight_threads_run_sessions_in_one_process(tmp_path, scene_png, round_):
    workspace = tmp_path / "ws"
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            with Session(workspace) as session:
                session.start(ACTION, str(scene_png), RunContext(difficulty="easy", seed=3, write_video=False), f"t{i}")
        except BaseException as exc:  # noqa: BLE001 — collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert errors == []
    rows = _rows(workspace)
    assert rows["episodes"] == [f"t{i}" for i in range(WRITERS)]
    counts = {t: sum(1 for a in rows["attempts"] if a[0] == t) for t in rows["episodes"]}
    assert len(set(counts.values())) == 1 and len(rows["attempts"]) == len(set(rows["attempts"]))


UPSERT_MANY = """
import sys
from spiral.memory.traces import EpisodeRecord, TraceDB
path, writer, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
db = TraceDB.open(path)
for i in range(n):
    db.record_episode(EpisodeRecord(thread_id=f"w{writer}-{i}", action="a"))
    db.record_episode(EpisodeRecord(thread_id=f"w{writer}-{i}", action="a", status="done"))
"""
"""One writer process: a fresh interpreter that imports only the installed package, so it runs the same under
`pytest` and `python -m pytest` (a spawned function from this module needs the repository on the child's path)."""


@pytest.mark.parametrize("round_", range(3))
def test_eight_processes_create_and_fill_one_fresh_trace_database(tmp_path, round_):
    """Every process opens the database while others are creating its tables."""
    path = str(tmp_path / "traces.sqlite")
    procs = [subprocess.Popen([sys.executable, "-c", UPSERT_MANY, path, str(w), "40"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for w in range(WRITERS)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert [(code, err.strip().splitlines()[-1:]) for code, err in results] == [(0, [])] * WRITERS
    db = TraceDB(path, read_only=True)
    episodes = db.episodes()
    assert len(episodes) == WRITERS * 40 and {e.status for e in episodes} == {"done"}
