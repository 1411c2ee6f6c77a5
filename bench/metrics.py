"""Benchmark metrics. Each docstring gives the formula.

Ground-truth metrics read the world's true end scene (from the simulator's
record, for scoring only); video metrics read pixels and need no weights.
"""

from __future__ import annotations

import numpy as np

from ..tools.perception import perceive
from ..tools.pixels import classify_pixels
from ..tools.predicates import Predicate, evaluate
from ..tools.world.scene import Scene, WorldObject, interpenetrating

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


def physically_plausible(end: Scene) -> bool:
    """No two objects interpenetrate in the true end scene (see world.scene.interpenetrating)."""
    return not interpenetrating(end)


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
    """Mean absolute pixel change between consecutive frames."""
    f = frames.astype(np.float32)
    return np.abs(f[1:] - f[:-1]).mean(axis=(1, 2, 3))


def temporal_consistency(frames: np.ndarray) -> float:
    """1 − fraction of frame transitions in which some object jumps: a step longer than 16 px
    and 2.5× the steps before and after it (a teleport or a cut), on perceived object tracks."""
    if len(frames) < 3:
        return 1.0
    jumps = np.zeros(len(frames) - 1, dtype=bool)
    for track in object_tracks(frames).values():
        steps = np.linalg.norm(np.diff(_fill(track), axis=0), axis=1)
        for i, step in enumerate(steps):
            around = max(steps[i - 1] if i > 0 else 0.0, steps[i + 1] if i + 1 < len(steps) else 0.0)
            jumps[i] |= step > 16.0 and step > 2.5 * around
    return 1.0 - float(jumps.mean())


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


def object_tracks(frames: np.ndarray) -> dict[tuple[str, str, str], np.ndarray]:
    """Screen positions (T, 2) of each object look across frames (NaN where unseen)."""
    tracks: dict[tuple[str, str, str], np.ndarray] = {}
    for t, frame in enumerate(frames):
        for o in perceive(frame):
            key = (o.shape, o.color, o.size)
            if key not in tracks:
                tracks[key] = np.full((len(frames), 2), np.nan)
            r0, c0, r1, c1 = o.bbox
            tracks[key][t] = ((c0 + c1) / 2, (r0 + r1) / 2)
    return tracks


def motion_smoothness(frames: np.ndarray) -> float:
    """VBench-style proxy without a frame-interpolation model, on perceived object tracks: for each
    object while it moves (speed > 0.5 px/frame), 1 − min(1, median‖p_{t+1} − 2p_t + p_{t−1}‖ /
    median‖p_{t+1} − p_t‖), averaged over moving objects. Eased motion scores about 0.7, jitter
    near 0, a static video 1. Medians keep a single teleport (temporal_consistency's job) or a
    perception slip from dominating."""
    if len(frames) < 3:
        return 1.0
    scores = []
    for track in object_tracks(frames).values():
        track = _fill(track)
        v = np.linalg.norm(np.diff(track, axis=0), axis=1)
        a = np.linalg.norm(track[2:] - 2 * track[1:-1] + track[:-2], axis=1)
        moving = (v[1:] > 0.5) | (v[:-1] > 0.5)
        if moving.sum() < 2:
            continue
        speed = float(np.median(np.maximum(v[1:], v[:-1])[moving]))
        scores.append(1.0 - min(1.0, float(np.median(a[moving])) / (speed + 1e-6)))
    return float(np.mean(scores)) if scores else 1.0


def _fill(track: np.ndarray) -> np.ndarray:
    """Carry the last seen position over frames where the object was hidden."""
    out = track.copy()
    seen = ~np.isnan(out[:, 0])
    if not seen.any():
        return np.zeros_like(out)
    first = int(np.argmax(seen))
    out[:first] = out[first]
    for t in range(1, len(out)):
        if np.isnan(out[t, 0]):
            out[t] = out[t - 1]
    return out


def flicker(frames: np.ndarray) -> float:
    """VBench-style temporal flickering score: 1 − mean_t mean|f_{t+1} − f_t| / 255 (higher is steadier)."""
    return 1.0 - float(_diffs(frames).mean()) / 255.0 if len(frames) > 1 else 1.0


def precision_recall(pairs: list[tuple[bool, bool]]) -> tuple[float, float]:
    """Critic accuracy against ground truth, over (critic passed, truly succeeded) pairs:
    precision = TP / (TP + FP), recall = TP / (TP + FN); NaN when undefined."""
    tp = sum(c and t for c, t in pairs)
    fp = sum(c and not t for c, t in pairs)
    fn = sum(t and not c for c, t in pairs)
    return precision_recall_counts(tp, fp, fn)


def precision_recall_counts(tp: int, fp: int, fn: int) -> tuple[float, float]:
    """The same from counts (what the results table keeps)."""
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    return precision, recall
