"""The verifiable reward: every sampled attempt of a train-split rollout judged against the world's truth.

This is the upper-bound arm of self-evolution: what a perfect critic would give. For a workspace collected on
ActWM-Sim **train** tasks (`spiral train collect --split train`), each attempt is judged as the bench judges a
loop's segment (bench/judge.py `judge_segment`): the ground-truth executor carries out the attempt's sub-action
from where its conditioning frame shows the world, and the judge compares the attempt's last frame with that
end state. Threads of any other split are refused: a held-out task's truth is the evaluator's, never a reward.

The verdicts are computed once and kept beside the traces (`truth-rewards.jsonl`, one line per attempt), so a
second arm or a rerun reads them back. The critic never sees them, and the trace records are not touched.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from ..bench.judge import judge_segment, ledger_looks
from ..bench.tasks import Task, build_suite
from ..memory.workspace import Workspace
from ..tools.errors import InputError
from ..vocabulary.state import Ledger, Plan
from ..vocabulary.trace_records import AttemptKey

TRUTH_FILE = "truth-rewards.jsonl"
TRUTH_SPLIT = "train"
"""The only split whose truth may become a reward."""
_THREAD = re.compile(r"-(?P<split>[a-z]+)-(?P<index>\d{4})-s\d+$")


class TruthVerdict(BaseModel):
    """The judge's verdict on one attempt, as reward terms (`truth:NAME`)."""

    thread_id: str
    plan_version: int
    sub_action_index: int
    try_index: int
    sample: int
    success: bool | None
    """None when the executor cannot carry the sub-action out from where the segment started (unscored)."""
    max_error: float | None = None
    """Largest distance of a found object from where the truth has it (table units)."""
    wrong: int | None = None
    """Objects missing, misplaced or extra."""

    @property
    def key(self) -> AttemptKey:
        return AttemptKey(self.thread_id, self.plan_version, self.sub_action_index, self.try_index, self.sample)

    def terms(self) -> dict[str, float]:
        if self.success is None:
            return {}
        return {"success": float(self.success), "max_error": float(self.max_error or 0.0), "wrong": float(self.wrong or 0)}


def task_of(thread_id: str) -> tuple[str, int]:
    """The split and index of the ActWM-Sim task a collected thread ran (`PREFIX-SPLIT-NNNN-sSEED`)."""
    match = _THREAD.search(thread_id)
    if match is None:
        raise InputError(f"thread {thread_id!r} does not name an ActWM-Sim task (PREFIX-SPLIT-NNNN-sSEED): the "
                         "verifiable reward needs rollouts from `spiral train collect`")
    return match["split"], int(match["index"])


def _train_tasks(threads: list[str]) -> dict[str, Task]:
    indices = {}
    for thread in threads:
        split, index = task_of(thread)
        if split != TRUTH_SPLIT:
            raise InputError(f"thread {thread} ran a {split} task: the verifiable reward is computed on train-split "
                             "tasks only (a held-out task's truth is the evaluator's, never a reward)")
        indices[thread] = index
    suite = build_suite(TRUTH_SPLIT, max(indices.values(), default=-1) + 1)
    return {thread: suite[index] for thread, index in indices.items()}


def truth_verdicts(workspace: str | Path) -> dict[AttemptKey, TruthVerdict]:
    """Every attempt's verdict, read from the workspace's cache or computed (and cached) now."""
    space = Workspace.of(workspace)
    cache = Path(workspace) / TRUTH_FILE
    known: dict[AttemptKey, TruthVerdict] = {}
    if cache.exists():
        for line in cache.read_text().splitlines():
            if line.strip():
                verdict = TruthVerdict.model_validate_json(line)
                known[verdict.key] = verdict
    with space.reading_traces() as db:
        attempts = [a for a in db.attempts() if a.key_of not in known]
        if not attempts:
            return known
        threads = sorted({a.thread_id for a in attempts})
        tasks = _train_tasks(threads)
        plans = {(t, p.version): p.plan for t in threads for p in db.plans(t)}
    store = space.artifacts
    looks = {t: _looks(space, t) for t in threads}
    for attempt in attempts:
        plan = store.get_model(plans[(attempt.thread_id, attempt.plan_version)], Plan)
        sub = plan.sub_actions[attempt.sub_action_index]
        judged = judge_segment(tasks[attempt.thread_id].scene, sub, looks[attempt.thread_id],
                               store.get_frame(attempt.conditioning_frame), store.get_frame(attempt.last_frame))
        key = attempt.key_of
        verdict = TruthVerdict(thread_id=key.thread_id, plan_version=key.plan_version,
                               sub_action_index=key.sub_action_index, try_index=key.try_index, sample=key.sample,
                               success=None if judged is None else judged.success,
                               max_error=None if judged is None else judged.max_error,
                               wrong=None if judged is None else len(judged.missing) + len(judged.misplaced) + judged.extra)
        known[key] = verdict
    # the whole file written aside and renamed: a kill mid-write leaves the old cache, never half a line
    partial = cache.with_suffix(".jsonl.tmp")
    partial.write_text("".join(f"{v.model_dump_json()}\n" for v in known.values()))
    partial.replace(cache)
    return known


def _looks(space: Workspace, thread: str) -> dict[str, tuple[str, str, str]]:
    """The plan's object ids -> their look, from the episode's last ledger (as bench/learned.py reads it)."""
    from ..graph.session import Session

    with Session(space.root) as session:
        state = session.state(thread)
    if state is None or not state.ledger_ref:
        return {}
    return ledger_looks(space.artifacts.get_model(state.ledger_ref, Ledger))
