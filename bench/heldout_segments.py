"""Single held-out segments, model against ground truth: does it carry out one instruction?

    python -m spiral.bench.heldout_segments [--model DIR ...] [--lora ADAPTER] [--count 32]

The segments are drawn from the end of the pre-training stream: positions 3,936 on of
`train_segments(4000)`. Both pre-trained models held them out. The shipped model trained on the stream's
first 1,936 and the GPU variant on its first 3,936, each keeping its pool's last 64 for validation.

For each model and segment, the model samples from the true first frame and instruction (12 steps,
seed = the segment's position). The judge (bench/judge.py) scores the last frame against the executor's
end state. Perception also measures how far each object moved, first to last frame: the largest
displacement, in table units, beside the ground truth's. This isolates the generator; the loop is not
involved.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from ..tools.perception import match_objects, perceive
from .judge import judge_frame
from .segments import SegmentExample, train_segments

FIRST_HELD_OUT = 3936
"""Both models' pre-training skipped the stream from here (4,000 examples, the last 64 held out)."""


class SegmentScore(BaseModel):
    model: str
    segments: int
    judged_right: int
    moved_median: float
    """Median over segments of the largest object displacement, first to last frame (table units)."""
    moved_over_10: float
    """Share of segments where some object moved more than 10 units."""
    truth_moved_median: float


def largest_move(frames: np.ndarray) -> float:
    """The largest displacement of a perceived object between the first and the last frame (0 if none match)."""
    first = perceive(frames[0])
    looks = {f"o{i}": (o.shape, o.color, o.size, o.x, o.y) for i, o in enumerate(first)}
    seen = match_objects(looks, perceive(frames[-1]), max_distance=float("inf"))
    return max((float(np.hypot(o.x - looks[k][3], o.y - looks[k][4])) for k, o in seen.items()), default=0.0)


def held_out(count: int, first: int = FIRST_HELD_OUT) -> list[SegmentExample]:
    return list(train_segments(first + count, start=first))


def score_model(pipe, label: str, examples: list[SegmentExample], truth: list[float], steps: int = 12) -> SegmentScore:
    """`truth`: the examples' own largest moves (the same for every model, measured once)."""
    from ..training.pretrain import generate

    right, moved = 0, []
    for k, ex in enumerate(examples):
        made = generate(pipe, ex.frames[0], ex.prompt, steps, seed=FIRST_HELD_OUT + k)
        right += judge_frame(ex.after, made[-1]).success
        moved.append(largest_move(made))
    return SegmentScore(model=label, segments=len(examples), judged_right=right,
                        moved_median=round(statistics.median(moved), 1),
                        moved_over_10=round(float(np.mean([m > 10 for m in moved])), 3),
                        truth_moved_median=round(statistics.median(truth), 1))


def main(models: list[str], count: int, lora: str = "") -> list[SegmentScore]:
    """Each model in turn; with `lora`, the last model again with the adapter (before and after RL)."""
    from diffusers import WanImageToVideoPipeline

    from ..tools.video.adapters import load_adapter
    from ..tools.video.tabletop import shipped_weights

    examples = held_out(count)
    truth = [largest_move(ex.frames) for ex in examples]
    scores = []
    folders = models or [str(shipped_weights())]
    for folder in folders:
        pipe = WanImageToVideoPipeline.from_pretrained(folder)
        pipe.set_progress_bar_config(disable=True)
        scores.append(score_model(pipe, Path(folder).as_posix(), examples, truth))
    if lora:
        load_adapter(pipe, lora)
        scores.append(score_model(pipe, f"{Path(folders[-1]).as_posix()} + {lora}", examples, truth))
    return scores


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], help="a pipeline folder (default: the shipped weights)")
    parser.add_argument("--lora", default="", help="an adapter from `spiral train`: the last model again, with it")
    parser.add_argument("--count", type=int, default=32)
    args = parser.parse_args()
    print("| model | judged right | largest move, median (units) | moved > 10 units | truth's median |")
    print("| --- | --- | --- | --- | --- |")
    for s in main(args.model, args.count, args.lora):
        print(f"| {s.model} | {s.judged_right}/{s.segments} | {s.moved_median} | {100 * s.moved_over_10:.0f} % | "
              f"{s.truth_moved_median} |")
