"""The verifiable reward (training/truth_reward.py): train-split attempts judged against the executor's truth,
cached beside the traces, and refused on any other split."""

from __future__ import annotations

import pytest

from spiral.memory.traces import TraceDB
from spiral.tools.errors import InputError
from spiral.training.collect import run_tasks
from spiral.training.truth_reward import TRUTH_FILE, task_of, truth_verdicts
from spiral.vocabulary.config import RunContext

pytestmark = pytest.mark.e2e


def _attempts(workspace):
    db = TraceDB(workspace / "traces.sqlite", read_only=True)
    try:
        return db.attempts()
    finally:
        db.close()


def test_each_train_attempt_gets_the_judges_verdict_against_the_truth_once(tmp_path):
    context = RunContext(difficulty="medium", write_video=False, seed=1, workspace=str(tmp_path))
    run_tasks(context, "train", 2, "collect")
    verdicts = truth_verdicts(tmp_path)
    attempts = _attempts(tmp_path)
    rows = [(a.thread_id, a.try_index, a.passed, verdicts[a.key_of].success, verdicts[a.key_of].wrong)
            for a in attempts]
    # the simulator's frames are exact: its critic's verdicts and the truth's agree, the failures with one object
    # wrong (drifted, then stopped short), the accepted retry right
    assert rows == [("collect-train-0000-s1", 0, True, True, 0), ("collect-train-0001-s1", 0, False, False, 1),
                    ("collect-train-0001-s1", 1, False, False, 1), ("collect-train-0001-s1", 2, True, True, 0)]
    assert len((tmp_path / TRUTH_FILE).read_text().splitlines()) == 4
    assert truth_verdicts(tmp_path) == verdicts  # read back, not judged again
    assert len((tmp_path / TRUTH_FILE).read_text().splitlines()) == 4


def test_a_held_out_task_never_becomes_a_reward(tmp_path):
    context = RunContext(difficulty="medium", write_video=False, seed=1, workspace=str(tmp_path))
    run_tasks(context, "test", 1, "eval")
    with pytest.raises(InputError, match="train-split tasks only"):
        truth_verdicts(tmp_path)
    assert not (tmp_path / TRUTH_FILE).exists()
    assert task_of("collect-train-0012-s3") == ("train", 12)
    with pytest.raises(InputError, match="does not name an ActWM-Sim task"):
        task_of("my-own-thread")
