"""`spiral train collect` run again after a kill resumes every unfinished thread, and ends with exactly the
rows an uninterrupted run has; trajectories are the same bytes in every process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from spiral.graph.session import Session
from spiral.memory.traces import TraceDB
from spiral.training.collect import run_tasks
from spiral.vocabulary.config import RunContext

pytestmark = pytest.mark.e2e


def _rows(workspace) -> tuple[list, list]:
    db = TraceDB(workspace / "traces.sqlite", read_only=True)
    try:
        episodes = sorted((e.thread_id, e.status, e.generator_calls) for e in db.episodes())
        attempts = sorted((a.thread_id, a.plan_version, a.sub_action_index, a.try_index, a.sample, a.seed, a.passed)
                          for a in db.attempts())
        return episodes, attempts
    finally:
        db.close()


def test_a_rerun_after_a_kill_resumes_the_unfinished_threads(tmp_path, monkeypatch):
    context = RunContext(difficulty="medium", write_video=False, seed=1)
    whole = run_tasks(context.model_copy(update={"workspace": str(tmp_path / "whole")}), "train", 3, "collect")
    assert (whole.started, whole.resumed, whole.kept) == (3, 0, 0)

    killed = tmp_path / "killed"
    original = Session.start
    calls = {"n": 0}

    def start_then_die(self, action, image, settings, thread_id=None, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the second task dies after its first segment, as a kill -9 would leave it
            def die(event):
                if getattr(event, "event", "") == "segment":
                    raise KeyboardInterrupt
            return original(self, action, image, settings, thread_id, observer=die)
        return original(self, action, image, settings, thread_id, **kwargs)

    monkeypatch.setattr(Session, "start", start_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_tasks(context.model_copy(update={"workspace": str(killed)}), "train", 3, "collect")
    monkeypatch.setattr(Session, "start", original)
    again = run_tasks(context.model_copy(update={"workspace": str(killed)}), "train", 3, "collect")
    assert (again.started, again.resumed, again.kept) == (1, 1, 1)
    assert _rows(killed) == _rows(tmp_path / "whole")
    once_more = run_tasks(context.model_copy(update={"workspace": str(killed)}), "train", 3, "collect")
    assert (once_more.started, once_more.resumed, once_more.kept) == (0, 0, 3)


PUT = """
import sys, torch
from spiral.memory.artifacts import ArtifactStore
store = ArtifactStore(sys.argv[1])
tensors = {name: torch.arange(12, dtype=torch.float32).reshape(3, 4) + i for i, name in enumerate("zyxwvu")}
print(store.put_tensors(tensors, {k: str(v) for v, k in enumerate(["seed", "backbone", "adapter", "steps", "shift"])}))
"""


def test_trajectory_bytes_are_the_same_in_every_process(tmp_path):
    """safetensors writes its header in hash order, which differs between processes: SPIRAL sorts it."""
    refs = {subprocess.run([sys.executable, "-c", PUT, str(tmp_path / f"s{i}")], capture_output=True, text=True,
                           check=True).stdout.strip() for i in range(4)}
    assert len(refs) == 1
