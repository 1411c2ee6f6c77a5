"""The benchmark's view of the simulator: the same `sim` backbone, with its ground truth kept.

Registered as the backbone `sim-scored` in benchmark processes only. It renders
exactly what `sim` renders (same seeds, same frames); it also files each
call's `SimTruth` under a hash of the frames, so the scorer can look up what
really happened in any segment the graph kept. The graph and its agents never
see this record.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np

from ..tools.video.base import ProgressFn, Segment, SegmentRequest
from ..tools.video.registry import register_backbone
from ..tools.video.sim import SimTruth, SimVideoGenerator

BACKBONE = "sim-scored"


def frames_key(frames: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(frames).tobytes()).hexdigest()


class ScoredSim:
    name = BACKBONE

    def __init__(self, difficulty: str = "medium") -> None:
        self.sim = SimVideoGenerator(difficulty)
        self.truths: dict[str, SimTruth] = {}
        self.seconds = 0.0
        self.calls = 0

    def generate(self, request: SegmentRequest, progress: ProgressFn | None = None) -> Segment:
        t0 = time.perf_counter()
        segment, truth = self.sim.generate_with_truth(request)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        self.truths[frames_key(segment.frames)] = truth
        if progress is not None:
            progress(1, 1)
        return segment

    def truth_of(self, frames: np.ndarray) -> SimTruth | None:
        return self.truths.get(frames_key(frames))

    def reset(self) -> None:
        self.truths.clear()
        self.seconds, self.calls = 0.0, 0


def install() -> None:
    register_backbone(BACKBONE, ScoredSim, "the sim backbone with its ground truth kept (benchmark scoring only)",
                      settings=("difficulty",), frames="sharp")
