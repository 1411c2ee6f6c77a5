"""Benchmark metrics. Each docstring gives the formula.

Ground-truth metrics read the world's true end scene (from the simulator's
record, for scoring only); video metrics read pixels and need no weights.
"""

from __future__ import annotations

import numpy as np

from ..tools.perception import classify_pixels
from ..tools.predicates import Predicate, evaluate
from ..tools.world.scene import Scene, WorldObject

MOVE_TOLERANCE = 2.5
TINT_TOLERANCE = 0.05


def by_look(reference: Scene, scene: Scene) -> dict[str, WorldObject]:
    """`scene`'s objects under `reference`'s ids, matched by look (shape, colour, size are unique
    per scene), since the simulator names objects afresh from every frame."""
    looks = {(o.shape, o.color, o.size if not o.is_container else ""): o for o in scene.objects}
    out = {}
    for ref in reference.objects:
        key = (ref.shape, ref.color, ref.size if not ref.is_container else "")
        if key in looks:
            out[ref.id] = looks[key]
    return out


def goal_completion(goal: list[str], start: Scene, end: Scene) -> float:
    """Fraction of goal predicates that hold in the true end scene: |{g : g(end)}| / |goal|."""
    objects = by_look(start, end)
    held = [evaluate(Predicate.parse(g), objects) for g in goal]  # type: ignore[arg-type]
    return float(np.mean(held)) if held else 1.0


def object_fidelity(goal: list[str], start: Scene, end: Scene) -> float:
    """Fraction of movables not named in the goal that end where they started, unchanged:
    |{o ∉ goal : ‖p_end − p_start‖ ≤ 2.5 ∧ ‖tint_end − tint_start‖∞ ≤ 0.05}| / |{o ∉ goal}|.
    A bystander that vanished counts as moved."""
    named = {s for g in goal for s in Predicate.parse(g).subjects}
    ends = by_look(start, end)
    bystanders = [o for o in start.movables if o.id not in named]
    if not bystanders:
        return 1.0
    kept = 0
    for o in bystanders:
        e = ends.get(o.id)
        if e is not None and np.hypot(e.x - o.x, e.y - o.y) <= MOVE_TOLERANCE \
                and np.abs(np.subtract(e.tint, o.tint)).max() <= TINT_TOLERANCE:
            kept += 1
    return kept / len(bystanders)


def _diffs(frames: np.ndarray) -> np.ndarray:
    f = frames.astype(np.float32)
    return np.abs(f[1:] - f[:-1]).mean(axis=(1, 2, 3))


def temporal_consistency(frames: np.ndarray) -> float:
    """1 − fraction of frame transitions that jump: a transition t jumps when its mean absolute
    pixel change d_t exceeds max(4·median(d), 3) — a teleport, a cut or a flash."""
    if len(frames) < 3:
        return 1.0
    d = _diffs(frames)
    moving = d[d > 0]
    threshold = max(4.0 * float(np.median(moving)) if moving.size else 0.0, 3.0)
    return 1.0 - float(np.mean(d > threshold))


def subject_consistency(frames: np.ndarray) -> float:
    """VBench-style proxy without weights: mean over t of the cosine similarity between the
    histogram of object colours (non-table pixels, by material) in frame t and in frame 0."""
    def hist(frame: np.ndarray) -> np.ndarray:
        labels = classify_pixels(frame)
        return np.bincount(labels[labels >= 0].ravel(), minlength=10)[:9].astype(np.float64)

    h0 = hist(frames[0])
    sims = []
    for frame in frames[1:]:
        h = hist(frame)
        denom = np.linalg.norm(h0) * np.linalg.norm(h)
        sims.append(float(h0 @ h / denom) if denom else 1.0)
    return float(np.mean(sims)) if sims else 1.0


def background_consistency(frames: np.ndarray) -> float:
    """VBench-style proxy: mean over t of 1 − mean|f_t − f_0|/255 over pixels that are table in both."""
    table = 9
    l0 = classify_pixels(frames[0]) == table
    f0 = frames[0].astype(np.float32)
    scores = []
    for frame in frames[1:]:
        mask = l0 & (classify_pixels(frame) == table)
        if mask.any():
            scores.append(1.0 - float(np.abs(frame.astype(np.float32)[mask] - f0[mask]).mean()) / 255.0)
    return float(np.mean(scores)) if scores else 1.0


def motion_smoothness(frames: np.ndarray) -> float:
    """VBench-style proxy: 1 − min(1, mean|f_{t+1} − 2f_t + f_{t−1}| / (2·mean|f_{t+1} − f_t| + ε)):
    how much of the change is acceleration rather than steady motion (a static video scores 1)."""
    if len(frames) < 3:
        return 1.0
    f = frames.astype(np.float32)
    accel = np.abs(f[2:] - 2 * f[1:-1] + f[:-2]).mean()
    speed = np.abs(f[1:] - f[:-1]).mean()
    return 1.0 - float(min(1.0, accel / (2 * speed + 1e-6)))


def flicker(frames: np.ndarray) -> float:
    """VBench-style temporal flickering score: 1 − mean_t mean|f_{t+1} − f_t| / 255 (higher is steadier)."""
    return 1.0 - float(_diffs(frames).mean()) / 255.0 if len(frames) > 1 else 1.0


def precision_recall(pairs: list[tuple[bool, bool]]) -> tuple[float, float]:
    """Critic accuracy against ground truth, over (critic passed, truly succeeded) pairs:
    precision = TP / (TP + FP), recall = TP / (TP + FN); NaN when undefined."""
    tp = sum(c and t for c, t in pairs)
    fp = sum(c and not t for c, t in pairs)
    fn = sum(t and not c for c, t in pairs)
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    return precision, recall
