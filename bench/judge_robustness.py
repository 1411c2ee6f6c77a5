"""Is the judge fair to soft frames and still strict? Perturbations of ground truth only.

    python -m spiral.bench.judge_robustness [--count 64]

For the held-out segments of bench/heldout_segments.py, the true last frame
(which shows the reference: it must pass) and the untouched first frame (the
subject still where it started: it must fail) are degraded the ways a learned
decoder softens frames (Gaussian blur of sigma 0.75, 1.0 and 1.25 pixels; halved
and scaled back up), and each is judged twice: as the judge reads frames now
(outlines at half of each edge, tools/soft_perception.py) and as it read them
before (`perception.perceive`, one material per pixel). No model output is
involved: the judge is changed only through perturbations of the truth.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
from PIL import Image
from pydantic import BaseModel
from scipy import ndimage

from ..tools.perception import perceive
from ..tools.soft_perception import perceive_soft
from .heldout_segments import held_out
from .judge import Reader, judge_frame


def blur(frame: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of `sigma` pixels in each colour channel, rounded back to uint8."""
    if sigma == 0:
        return frame
    soft = ndimage.gaussian_filter(frame.astype(np.float32), sigma=(sigma, sigma, 0))
    return np.clip(soft, 0, 255).round().astype(np.uint8)


def halved(frame: np.ndarray) -> np.ndarray:
    """Down to half size and back up (bilinear): what a decoder that lost the finest scale gives."""
    height, width = frame.shape[:2]
    small = Image.fromarray(frame).resize((width // 2, height // 2), Image.BILINEAR)
    return np.asarray(small.resize((width, height), Image.BILINEAR))


PERTURBATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": lambda f: f,
    "blur 0.75 px": lambda f: blur(f, 0.75),
    "blur 1.0 px": lambda f: blur(f, 1.0),
    "blur 1.25 px": lambda f: blur(f, 1.25),
    "halved, scaled back up": halved,
}
READERS: dict[str, Reader] = {"before (one material per pixel)": perceive, "now (half-edge outlines)": perceive_soft}


class RobustnessRow(BaseModel):
    perturbation: str
    reader: str
    last_frame_right: int
    """True last frames judged right (should be all)."""
    first_frame_right: int
    """Untouched first frames judged right (should be only segments whose move is within tolerance)."""
    segments: int


def robustness(count: int = 64) -> list[RobustnessRow]:
    examples = held_out(count)
    rows = []
    for reader_name, read in READERS.items():
        for name, perturb in PERTURBATIONS.items():
            last = sum(judge_frame(ex.after, perturb(ex.frames[-1]), read).success for ex in examples)
            first = sum(judge_frame(ex.after, perturb(ex.frames[0]), read).success for ex in examples)
            rows.append(RobustnessRow(perturbation=name, reader=reader_name, last_frame_right=last,
                                      first_frame_right=first, segments=len(examples)))
    return rows


def table(rows: list[RobustnessRow]) -> str:
    lines = ["| perturbation | judge | true last frame judged right | untouched first frame judged right |",
             "| --- | --- | --- | --- |"]
    lines += [f"| {r.perturbation} | {r.reader} | {r.last_frame_right}/{r.segments} | {r.first_frame_right}/{r.segments} |"
              for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=64, help="held-out segments (default 64)")
    print(table(robustness(parser.parse_args().count)))
