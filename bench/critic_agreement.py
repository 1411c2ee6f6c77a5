"""Does SPIRAL's critic agree with the independent judge on a learned model's segments?

    python -m spiral.bench.critic_agreement --split train --count 640 --cache runs/critic   # calibration set
    python -m spiral.bench.critic_agreement --split held-out --count 320 --cache runs/critic  # the measurement

One segment at a time, as `bench/heldout_segments.py` makes them: the model samples from the true first frame
and instruction (12 steps, seed = the segment's position, the planner's goal sketch shown). The judge
(bench/judge.py) scores the last frame against the executor's end state; the critic judges the whole segment
as the loop would (nodes/critic.py, the reading the backbone asks for): the sub-action SPIRAL's rule planner
makes of the step from the first frame, with its post-conditions, and a ledger read from that frame.

`train` segments come from the start of the pre-training stream (positions 0 on, every one trained on):
the critic's learned-frame tolerances are chosen there and nowhere else. `held-out` segments start at
position 3,936 (the pool's last 64, then draws the pool never reached): the measurement. Generated frames
are cached in `--cache` by position, so a rerun only judges. The judge is never a reward and never tunes
the critic on held-out segments.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from ..nodes.critic import PerceptionCritic
from ..nodes.ledger import ledger_from
from ..nodes.reading import LEARNED, READINGS, Reading
from ..vocabulary.state import Ledger, SubAction
from .heldout_segments import FIRST_HELD_OUT, load_pipeline, planned_goal, planned_sub_action
from .judge import judge_frame
from .segments import SegmentExample, train_segments

SPLITS = {"train": 0, "held-out": FIRST_HELD_OUT}
"""Where each split starts in the pre-training stream."""


class Verdicts(BaseModel):
    """The critic's and the judge's verdicts on one generated segment."""

    position: int
    critic: bool
    judge: bool
    failure: str | None
    """The critic's failure class when it failed the segment."""
    judge_missing: int
    judge_misplaced: int


class Agreement(BaseModel):
    split: str
    reading: str
    segments: int
    tp: int
    fp: int
    fn: int
    tn: int
    skipped: int
    """Segments whose step the rule planner cannot ground in the first frame perception reads."""
    critic_failures_on_right: dict[str, int]
    """Why the critic failed segments the judge found right."""



def critic_inputs(ex: SegmentExample, reading: Reading = LEARNED) -> tuple[SubAction, Ledger] | None:
    """The sub-action and the ledger the loop's critic would have, read from the true first frame as the run's
    reading reads its start image (nodes/plan.py)."""
    seen = reading.perceive(ex.frames[0])
    sub = planned_sub_action(ex, seen)
    return None if sub is None else (sub, ledger_from(seen, ""))


def generated(pipe, ex: SegmentExample, position: int, cache: Path | None) -> np.ndarray:
    """The model's segment for this example (cached by position when there is a cache)."""
    path = cache / f"{position:05d}.npy" if cache is not None else None
    if path is not None and path.exists():
        return np.load(path)
    from ..training.pretrain_denoiser import generate

    made = generate(pipe, ex.frames[0], ex.prompt, 12, seed=position, goal=planned_goal(ex))
    if cache is None or path is None:
        return made
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, made)
    tmp.replace(path)
    return made


def verdicts(split: str, count: int, cache: Path | None, critic: PerceptionCritic | None = None,
             model: str = "", lora: str = "") -> tuple[list[Verdicts], int]:
    """Every segment's two verdicts (generating what the cache lacks; everything without one), and how many
    were skipped. `lora`: the model with that adapter (`spiral train`)."""
    from tqdm import tqdm

    start = SPLITS[split]
    folder = cache / split if cache is not None else None
    pipe = None
    critic = critic or PerceptionCritic(LEARNED)
    out, skipped = [], 0
    for k, ex in enumerate(tqdm(train_segments(start + count, start=start), total=count, desc=f"segments: {split}",
                                unit="seg", disable=None)):
        position = start + k
        if pipe is None and (folder is None or not (folder / f"{position:05d}.npy").exists()):
            pipe = load_pipeline(model, lora)
        made = generated(pipe, ex, position, folder)
        inputs = critic_inputs(ex, critic.reading)
        if inputs is None:
            skipped += 1
            continue
        sub, ledger = inputs
        verdict = critic.judge(sub, made, ex.frames[0], ledger)
        truth = judge_frame(ex.after, made[-1])
        out.append(Verdicts(position=position, critic=verdict.passed, judge=truth.success, failure=verdict.failure,
                            judge_missing=len(truth.missing), judge_misplaced=len(truth.misplaced)))
    return out, skipped


def agreement(split: str, reading: str, rows: list[Verdicts], skipped: int) -> Agreement:
    why = Counter(r.failure or "?" for r in rows if r.judge and not r.critic)
    return Agreement(split=split, reading=reading, segments=len(rows), skipped=skipped,
                     tp=sum(r.critic and r.judge for r in rows), fp=sum(r.critic and not r.judge for r in rows),
                     fn=sum(r.judge and not r.critic for r in rows), tn=sum(not r.critic and not r.judge for r in rows),
                     critic_failures_on_right=dict(why.most_common()))


class SegmentCheck(BaseModel):
    """A policy's held-out single segments, judged twice: what `spiral train loop --segment-check` records."""

    segments: int
    critic_passed: int
    judge_right: int

    @property
    def critic_rate(self) -> float:
        return self.critic_passed / self.segments if self.segments else 0.0

    @property
    def judge_rate(self) -> float:
        return self.judge_right / self.segments if self.segments else 0.0


def segment_check(count: int, model: str = "", lora: str = "") -> SegmentCheck:
    """The critic's pass rate and the judge's success on the first `count` held-out segments, for the model
    (with `lora`). The judge scores, it never rewards: a critic that learns to be fooled shows as a gap here."""
    rows, skipped = verdicts("held-out", count, None, PerceptionCritic(LEARNED), model, lora)
    return SegmentCheck(segments=len(rows) + skipped, critic_passed=sum(r.critic for r in rows),
                        judge_right=sum(r.judge for r in rows))


def _share(hits: int, total: int) -> str:
    """hits/total with its 95 % Clopper-Pearson interval (with few positives the point figure says little)."""
    if not total:
        return "– (none)"
    from scipy.stats import binomtest

    ci = binomtest(hits, total).proportion_ci(0.95, method="exact")
    return f"{hits / total:.2f} [{ci.low:.2f}, {ci.high:.2f}]"


def table(results: list[Agreement]) -> str:
    lines = ["| split | critic reading | segments (skipped) | judge right | critic pass, judge right (TP) | "
             "critic pass, judge wrong (FP) | critic fail, judge right (FN) | both fail (TN) | precision [95 %] | recall [95 %] |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {a.split} | {a.reading} | {a.segments} ({a.skipped}) | {a.tp + a.fn} | {a.tp} | {a.fp} | {a.fn} | "
              f"{a.tn} | {_share(a.tp, a.tp + a.fp)} | {_share(a.tp, a.tp + a.fn)} |" for a in results]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=sorted(SPLITS), default="held-out")
    parser.add_argument("--count", type=int, default=320)
    parser.add_argument("--cache", default="runs/critic", help="folder for the generated segments")
    parser.add_argument("--model", default="", help="a pipeline folder (default: the shipped weights)")
    args = parser.parse_args()
    results = []
    for reading in ("sharp", "learned"):
        rows, skipped = verdicts(args.split, args.count, Path(args.cache), PerceptionCritic(READINGS[reading]),
                                 args.model)
        results.append(agreement(args.split, reading, rows, skipped))
    print(table(results))
    for a in results:
        print(f"{a.reading}: why the critic failed segments the judge found right: {a.critic_failures_on_right}")
