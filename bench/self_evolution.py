"""Self-evolution's arms against the control: held-out single segments and SPIRAL episodes, paired.

    python -m spiral.bench.self_evolution --arm base= --arm control=runs/rl27/control/adapter \\
        --arm self-evolution=runs/rl27/self/adapter --arm verifiable=runs/rl27/truth/adapter \\
        --count 64 --cache runs/rl27/segments \\
        --episodes base=runs/bench-tt3/results.jsonl --episodes self-evolution=runs/rl27/self/episodes.jsonl

Each arm is an adapter from `spiral train grpo | dpo` (empty: the base weights). **Segments**: the first
`count` held-out single segments (bench/critic_agreement.py's held-out split: the same segments, seeds and goal
sketches for every arm), each judged by the independent judge against the executor's end state, and by the
critic (its pass rate is beside the judge's, so reward hacking shows as a gap). **Episodes**: SPIRAL rows of
`spiral bench --suite tabletop-tiny [--lora ADAPTER]` results (JSONL), 30 held-out tasks x 3 seeds; a task's
score is its success rate over seeds. Every arm is compared with `--against` (default: control) segment by
segment and task by task: the mean difference, its 95 % bootstrap interval and a two-sided sign-flip
permutation test (bench/intervals.py). The judge scores here and nowhere is it a reward.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pydantic import BaseModel

from ..nodes.critic import PerceptionCritic
from ..nodes.reading import LEARNED
from ..tools.errors import InputError
from .critic_agreement import verdicts
from .intervals import Interval, PairedDifference, bootstrap_mean, paired_difference
from .learned import LearnedResult


class ArmSegments(BaseModel):
    """One arm's held-out segments: the judge's and the critic's verdict on each, by position."""

    label: str
    lora: str
    judge: dict[int, bool]
    critic: dict[int, bool]


class ArmEpisodes(BaseModel):
    """One arm's SPIRAL episodes: each task's success rate over its seeds."""

    label: str
    by_task: dict[str, float]
    episodes: int


class ArmSummary(BaseModel):
    label: str
    segments: int
    judge_right: int
    critic_passed: int
    segment_gain: PairedDifference | None
    """Judge-right share minus the reference arm's, segment by segment (None for the reference itself)."""
    episode_success: Interval | None
    episode_gain: PairedDifference | None


def arm_segments(label: str, lora: str, count: int, cache: Path | None, model: str = "") -> ArmSegments:
    """Generate (or read from `cache/label`) and judge the arm's held-out segments."""
    folder = cache / label if cache is not None else None
    rows, _ = verdicts("held-out", count, folder, PerceptionCritic(LEARNED), model, lora)
    return ArmSegments(label=label, lora=lora, judge={r.position: r.judge for r in rows},
                       critic={r.position: r.critic for r in rows})


def arm_episodes(label: str, results: str | Path) -> ArmEpisodes:
    """SPIRAL's rows of one `spiral bench --suite tabletop-tiny` results file (one model's)."""
    path = Path(results)
    if not path.is_file():
        raise InputError(f"no bench results at {path}: run spiral bench --suite tabletop-tiny --methods spiral first")
    rows = [LearnedResult.model_validate_json(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.method == "spiral"]
    models = {r.model for r in rows}
    if len(models) != 1:
        raise InputError(f"{path} holds SPIRAL rows of {len(models)} models ({', '.join(sorted(models))}): give one "
                         "results file per arm")
    by_task: dict[str, list[float]] = {}
    for r in rows:
        by_task.setdefault(r.task_id, []).append(float(r.success))
    return ArmEpisodes(label=label, by_task={t: sum(v) / len(v) for t, v in by_task.items()}, episodes=len(rows))


def _paired(a: dict, b: dict) -> PairedDifference:
    shared = sorted(set(a) & set(b))
    if len(shared) != len(a) or len(shared) != len(b):
        raise InputError(f"paired arms need the same segments or tasks (got {len(a)} and {len(b)}, {len(shared)} "
                         "shared)")
    return paired_difference([float(a[k]) for k in shared], [float(b[k]) for k in shared])


def summarise(segments: list[ArmSegments], episodes: dict[str, ArmEpisodes], against: str) -> list[ArmSummary]:
    by_label = {s.label: s for s in segments}
    if against not in by_label:
        raise InputError(f"--against {against}: no arm of that name (arms: {', '.join(by_label)})")
    reference = by_label[against]
    out = []
    for arm in segments:
        mine, theirs = episodes.get(arm.label), episodes.get(against)
        out.append(ArmSummary(
            label=arm.label, segments=len(arm.judge), judge_right=sum(arm.judge.values()),
            critic_passed=sum(arm.critic.values()),
            segment_gain=None if arm.label == against else _paired(arm.judge, reference.judge),
            episode_success=bootstrap_mean(list(mine.by_task.values())) if mine else None,
            episode_gain=_paired(mine.by_task, theirs.by_task) if mine and theirs and arm.label != against else None))
    return out


def table(rows: list[ArmSummary], against: str) -> str:
    lines = [f"| arm | held-out segments right (judge) | critic passes | segments: Δ vs {against} [95 %], p | "
             f"SPIRAL episodes: success % [95 %] | episodes: Δ vs {against} (points) [95 %], p |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r.label} | {r.judge_right}/{r.segments} | {r.critic_passed}/{r.segments} | "
                     f"{r.segment_gain.text(100) if r.segment_gain else '–'} | "
                     f"{r.episode_success.text(100) if r.episode_success else '–'} | "
                     f"{r.episode_gain.text(100) if r.episode_gain else '–'} |")
    return "\n".join(lines)


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for value in values:
        label, sep, path = value.partition("=")
        if not sep or not label:
            raise InputError(f"{flag} {value!r}: give LABEL=PATH (an empty path is the base weights)")
        out[label] = path
    return out


def main(argv: list[str] | None = None) -> list[ArmSummary]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", action="append", default=[], help="LABEL=ADAPTER (empty: the base weights)")
    parser.add_argument("--episodes", action="append", default=[], help="LABEL=RESULTS.jsonl from spiral bench")
    parser.add_argument("--against", default="control", help="the arm every other is compared with")
    parser.add_argument("--count", type=int, default=64)
    parser.add_argument("--cache", default="", help="keep each arm's generated segments here (a rerun only judges)")
    parser.add_argument("--model", default="", help="a pipeline folder (default: the shipped weights)")
    parser.add_argument("--json", default="", help="also write the summaries here")
    args = parser.parse_args(argv)
    arms = _pairs(args.arm, "--arm")
    cache = Path(args.cache) if args.cache else None
    segments = [arm_segments(label, lora, args.count, cache, args.model) for label, lora in arms.items()]
    episodes = {label: arm_episodes(label, path) for label, path in _pairs(args.episodes, "--episodes").items()}
    rows = summarise(segments, episodes, args.against)
    print(table(rows, args.against))
    if args.json:
        Path(args.json).write_text(json.dumps([r.model_dump() for r in rows], indent=1))
    return rows


if __name__ == "__main__":
    main()
