"""Single held-out segments, model against ground truth: does it carry out one instruction?

    python -m spiral.bench.heldout_segments [--model DIR ...] [--lora ADAPTER] [--count 64] [--no-goal]
    python -m spiral.bench.heldout_segments --vae DIR          # the autoencoder's round trip of the truth

The segments are drawn from the end of the pre-training stream: positions 3,936 on of
`train_segments(4000)`. Every pre-trained model held them out (the shipped models trained on at most the
stream's first 3,936, keeping their pool's last 64, these, for validation).

For each model and segment, the model samples from the true first frame and instruction (12 steps,
seed = the segment's position) and, for a model trained on goal sketches, the goal SPIRAL's planner reads
from that frame (nodes/goal.py; `--no-goal` leaves it out). The judge (bench/judge.py) scores the last
frame against the executor's end state. Two measures need no perception: where the true last frame differs
from the first by more than 30 levels, split into where the object leaves and where it arrives (arrival:
the true last frame is farther from the bare table, the median of 256 first frames, than the first frame
is there), the model's last-frame error there against copying the first frame (1 = did nothing, 0 =
exact; summed over segments). Perception measures how far each object moved, first to last frame: the
largest displacement, in table units, beside the ground truth's. This isolates the generator; the loop is
not involved. `--vae DIR` judges the autoencoder's own round trip of the true segments instead (no
denoiser): a ceiling for any model with that autoencoder.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from ..nodes.goal import goal_for
from ..nodes.ledger import ledger_from
from ..nodes.planner import RulePlanAgent
from ..tools.perception import PerceivedObject, match_objects, perceive
from ..tools.soft_perception import perceive_soft
from ..tools.video.base import GoalMove
from ..vocabulary.state import SubAction
from .judge import judge_frame
from .segments import SegmentExample, train_segments

FIRST_HELD_OUT = 3936
"""Every model's pre-training skipped the stream from here (4,000 examples, the last 64 held out)."""
CHANGE_LEVELS = 30
"""A pixel where the true last frame differs from the first by more than this (any channel) is where the
clip changes."""


class PlaceErrors(BaseModel):
    """Last-frame error where the object leaves and where it arrives, against copying the first frame."""

    leave: float
    arrive: float


class SegmentScore(BaseModel):
    model: str
    segments: int
    judged_right: int
    moved_median: float
    """Median over segments of the largest object displacement, first to last frame (table units)."""
    moved_over_10: float
    """Share of segments where some object moved more than 10 units."""
    truth_moved_median: float
    places: PlaceErrors
    goal: bool
    """The model was shown the planner's goal."""
    pixel_mae: float
    """Mean absolute difference of the last frame from the true last frame (levels)."""
    psnr: float


def planned_sub_action(ex: SegmentExample, seen: list[PerceivedObject]) -> SubAction | None:
    """The sub-action SPIRAL's rule planner makes of this segment's step, with its post-conditions, over the
    objects perception reads in the first frame (each world object named by the perceived one of its look
    nearest it); None when one is not read there."""
    def perceived(world_id: str | None) -> PerceivedObject | None:
        if world_id is None or world_id not in {o.id for o in ex.before.objects}:
            return None
        obj = ex.before.get(world_id)
        looks = [p for p in seen if (p.shape, p.color) == (obj.shape, obj.color)]
        return min(looks, key=lambda p: np.hypot(p.x - obj.x, p.y - obj.y)) if looks else None

    step = ex.step
    subject, other = perceived(step.subject), perceived(step.target)
    if subject is None or (step.target is not None and other is None):
        return None
    place = step.place if step.verb == "move_to" else None
    sub = RulePlanAgent().sub_action(step.verb, subject, seen, other, place)
    return sub.model_copy(update={"prompt": ex.prompt, "id": "s0"})


def planned_goal(ex: SegmentExample) -> list[GoalMove]:
    """The goal SPIRAL's planner gives a goal-taking backbone for this segment, read from its first frame."""
    seen = perceive(ex.frames[0])
    sub = planned_sub_action(ex, seen)
    return [] if sub is None else goal_for(sub, ex.frames[0], ledger_from(seen, ""))


def held_out(count: int, first: int = FIRST_HELD_OUT) -> list[SegmentExample]:
    return list(train_segments(first + count, start=first))


def bare_table(count: int = 256) -> np.ndarray:
    """The per-pixel median of many train segments' first frames: the table with no object on it."""
    firsts = [ex.frames[0] for ex in train_segments(count)]
    return np.median(np.stack(firsts).astype(np.float32), axis=0)


class PlaceMeter:
    """Sums of the model's and the copy's last-frame errors where objects leave and where they arrive."""

    def __init__(self, table: np.ndarray) -> None:
        self.table = table
        self.model = {"leave": 0.0, "arrive": 0.0}
        self.copy = {"leave": 0.0, "arrive": 0.0}

    def add(self, first: np.ndarray, last: np.ndarray, made_last: np.ndarray) -> None:
        first, last, made = (f.astype(np.float32) for f in (first, last, made_last))
        changed = np.abs(last - first).max(axis=2) > CHANGE_LEVELS
        arrive = changed & (np.abs(last - self.table).sum(axis=2) > np.abs(first - self.table).sum(axis=2))
        for name, where in (("arrive", arrive), ("leave", changed & ~arrive)):
            self.model[name] += float(np.abs(made - last)[where].sum())
            self.copy[name] += float(np.abs(first - last)[where].sum())

    def errors(self) -> PlaceErrors:
        return PlaceErrors(**{k: round(self.model[k] / max(self.copy[k], 1e-9), 3) for k in self.model})


def largest_move(frames: np.ndarray) -> float:
    """The largest displacement of a perceived object between the first and the last frame (0 if none match)."""
    first = perceive_soft(frames[0])
    looks = {f"o{i}": (o.shape, o.color, o.size, o.x, o.y) for i, o in enumerate(first)}
    seen = match_objects(looks, perceive_soft(frames[-1]), max_distance=float("inf"))
    return max((float(np.hypot(o.x - looks[k][3], o.y - looks[k][4])) for k, o in seen.items()), default=0.0)


def takes_goal(pipe) -> bool:
    """A Wan pipeline trained on goal sketches: the condition on channels, with a last frame (tabletop-tiny)."""
    config = pipe.transformer.config
    return not pipe.config.get("expand_timesteps", False) and config.in_channels > config.out_channels \
        and config.get("image_dim") is None


def score_frames(label: str, examples: list[SegmentExample], lasts: list[np.ndarray], alls: list[np.ndarray],
                 truth: list[float], table: np.ndarray, goal: bool) -> SegmentScore:
    meter, right, moved, mae, psnr = PlaceMeter(table), 0, [], [], []
    for ex, made_last, made in zip(examples, lasts, alls, strict=True):
        verdict = judge_frame(ex.after, made_last)
        right += verdict.success
        mae.append(verdict.pixel_mae)
        psnr.append(verdict.psnr)
        moved.append(largest_move(made))
        meter.add(ex.frames[0], ex.frames[-1], made_last)
    return SegmentScore(model=label, segments=len(examples), judged_right=right,
                        moved_median=round(statistics.median(moved), 1),
                        moved_over_10=round(float(np.mean([m > 10 for m in moved])), 3),
                        truth_moved_median=round(statistics.median(truth), 1), places=meter.errors(), goal=goal,
                        pixel_mae=round(float(np.mean(mae)), 2), psnr=round(float(np.mean(psnr)), 2))


def score_model(pipe, label: str, examples: list[SegmentExample], truth: list[float], table: np.ndarray,
                steps: int = 12, use_goal: bool = True) -> SegmentScore:
    """`truth`: the examples' own largest moves (the same for every model, measured once)."""
    from tqdm import tqdm

    from ..training.pretrain_denoiser import generate

    goal = use_goal and takes_goal(pipe)
    made = [generate(pipe, ex.frames[0], ex.prompt, steps, seed=FIRST_HELD_OUT + k,
                     goal=planned_goal(ex) if goal else None)
            for k, ex in enumerate(tqdm(examples, desc=f"segments: {label}", unit="seg", disable=None))]
    return score_frames(label, examples, [m[-1] for m in made], made, truth, table, goal)


def vae_round_trip(folder: str, examples: list[SegmentExample], truth: list[float], table: np.ndarray) -> SegmentScore:
    """The autoencoder alone: each true segment encoded (posterior mode) and decoded, judged like a model's."""
    import torch
    from diffusers import AutoencoderKLWan

    from ..training.pretrain_data import to_unit

    path = Path(folder)
    vae = AutoencoderKLWan.from_pretrained(path / "vae" if (path / "vae").is_dir() else path).eval()
    made = []
    with torch.no_grad():
        for ex in examples:
            decoded = vae.decode(vae.encode(to_unit(ex.frames[None])).latent_dist.mode()).sample[0]
            made.append(((decoded.permute(1, 2, 3, 0).clamp(-1, 1) + 1) * 127.5).round().byte().numpy())
    return score_frames(f"{path.as_posix()} (autoencoder round trip)", examples, [m[-1] for m in made], made, truth,
                        table, goal=False)


def load_pipeline(model: str, lora: str = ""):
    """The shipped tabletop-tiny pipeline (or the one in folder `model`, with adapter `lora`), quiet."""
    from ..tools.video.diffusers_specs import quiet_transformers

    quiet_transformers()
    from diffusers import WanImageToVideoPipeline

    from ..tools.video.tabletop import shipped_weights

    pipe = WanImageToVideoPipeline.from_pretrained(model or str(shipped_weights()))
    pipe.set_progress_bar_config(disable=True)
    if lora:
        from ..tools.video.adapters import load_adapter

        load_adapter(pipe, lora)
    return pipe


def main(models: list[str], count: int, lora: str = "", use_goal: bool = True, vae: str = "") -> list[SegmentScore]:
    """Each model in turn; with `lora`, the last model again with the adapter (before and after RL); with `vae`,
    that autoencoder's round trip instead."""
    from ..tools.video.adapters import load_adapter
    from ..tools.video.tabletop import shipped_weights

    examples = held_out(count)
    truth = [largest_move(ex.frames) for ex in examples]
    table = bare_table()
    if vae:
        return [vae_round_trip(vae, examples, truth, table)]
    scores = []
    folders = models or [str(shipped_weights())]
    for folder in folders:
        pipe = load_pipeline(folder)
        scores.append(score_model(pipe, Path(folder).as_posix(), examples, truth, table, use_goal=use_goal))
    if lora:
        load_adapter(pipe, lora)
        scores.append(score_model(pipe, f"{Path(folders[-1]).as_posix()} + {lora}", examples, truth, table,
                                  use_goal=use_goal))
    return scores


def table_rows(scores: list[SegmentScore]) -> str:
    lines = ["| model | goal shown | judged right | leave-place error | arrive-place error | largest move, median "
             "(units) | moved > 10 units | truth's median | last-frame MAE | PSNR |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {s.model} | {'yes' if s.goal else 'no'} | {s.judged_right}/{s.segments} | {s.places.leave:.2f} | "
              f"{s.places.arrive:.2f} | {s.moved_median} | {100 * s.moved_over_10:.0f} % | {s.truth_moved_median} | "
              f"{s.pixel_mae:.1f} | {s.psnr:.1f} |" for s in scores]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], help="a pipeline folder (default: the shipped weights)")
    parser.add_argument("--lora", default="", help="an adapter from `spiral train`: the last model again, with it")
    parser.add_argument("--count", type=int, default=64)
    parser.add_argument("--no-goal", action="store_true", help="do not show a goal-taking model the planner's goal")
    parser.add_argument("--vae", default="", help="judge this autoencoder's round trip of the truth (a pipeline or "
                        "vae folder) instead of a model")
    args = parser.parse_args()
    print(table_rows(main(args.model, args.count, args.lora, not args.no_goal, args.vae)))
