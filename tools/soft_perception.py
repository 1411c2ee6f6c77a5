"""Reading soft frames: object outlines at half of the edge, by two-colour unmixing.

`perception.perceive` assigns each pixel to one material; an edge pixel that a
learned decoder (or any blur) has mixed with the table falls out of the object,
so a blurred object reads one size smaller and a blurred cube's corners go
first, which makes it a ball. Here each object's outline is measured again
where it really is: every pixel near the object is explained as `a * object
colour + g * background colour` (least squares; `g` absorbs shadow and
vignette on the background), and the pixel belongs to the object when the
object's share `a / (a + g)` is at least one half. A blur of any width keeps a
straight edge's half-way point where the edge was, so the outline, size and
corners survive blur that `perceive` does not; on the renderer's sharp frames
the outline is the one `perceive` reads. Seams of mixed pixels between a
stacked object and its base are bridged by `STACK_GAP` rows.

Nothing here decides a verdict: the independent judge (bench/judge.py) reads
generated frames this way with its own thresholds.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .perception import (
    SEEN_FRAMES,
    FrameCache,
    PerceivedObject,
    frame_digest,
    named_in_reading_order,
    object_from_outline,
    perceive,
    perceive_frames,
    place_stacked,
)
from .pixels import CLASS_NAMES, N_OBJECT_COLORS, classify_pixels
from .world.scene import TABLE_COLOR, TABLE_SIZE

WINDOW = 4
"""Pixels around an object's hard outline where its soft outline is looked for (a 1.5-pixel blur spreads an
edge over about 3)."""
STACK_GAP = 2
"""Rows of mixed pixels allowed between a stacked object's outline and its base's."""
_MIN_WEIGHT = 0.2
"""Pixels darker than this share of object plus background (deep shadow) belong to neither."""
_seen: FrameCache[list[PerceivedObject]] = FrameCache(SEEN_FRAMES)


def perceive_soft_frames(frames: np.ndarray) -> list[list[PerceivedObject]]:
    """`perceive_soft` of every frame of a (T, H, W, 3) stack, remembered by content as `perceive_frames` does
    (the critic reads a segment's frames, and the next step reads its last one again)."""
    keys = [frame_digest(f) for f in frames]
    found = {key: seen for key in dict.fromkeys(keys) if (seen := _seen.get(key)) is not None}
    if len(found) < len(set(keys)):
        perceive_frames(frames)  # the hard reading of the new frames together, into perception's cache
        for key, frame in zip(keys, frames, strict=True):
            if key not in found:
                found[key] = perceive_soft(frame)
                _seen.put(key, found[key])
    return [[o.model_copy() for o in found[key]] for key in keys]


def perceive_soft(frame: np.ndarray) -> list[PerceivedObject]:
    """`perceive`, with every movable object's outline read at half of its edge (see the module docstring)."""
    height, width = frame.shape[:2]
    sx, sy = width / TABLE_SIZE, height / TABLE_SIZE
    hard = perceive(frame)
    labels = classify_pixels(frame)
    pixels = frame.astype(np.float32)
    owner = np.full((height, width), -1, dtype=np.int32)
    outlines: list[tuple[tuple[int, int, int, int], np.ndarray] | None] = []
    for idx, obj in enumerate(hard):
        outline = None if obj.is_container else _soft_outline(pixels, labels, obj)
        outlines.append(outline)
        if outline is not None:
            (r0, c0, r1, c1), comp = outline
            owner[r0:r1 + 1, c0:c1 + 1][comp] = idx
    found: list[PerceivedObject] = []
    for idx, (obj, outline) in enumerate(zip(hard, outlines, strict=True)):
        if outline is None:
            found.append(obj.model_copy(update={"z": 0.0}))
            continue
        bbox, comp = outline
        r0, c0, _, c1 = bbox
        above = owner[max(r0 - 1 - STACK_GAP, 0):r0, c0:c1 + 1]
        covered = [col[(col >= 0) & (col != idx)].size > 0 for col in above.T] if above.size else []
        occluded = bool(covered) and 2 * sum(covered) >= len(covered)
        found.append(object_from_outline(CLASS_NAMES.index(obj.color), bbox, comp, occluded, obj.mean_rgb, sx, sy))
    place_stacked(found, owner, sy, gap=STACK_GAP)
    return named_in_reading_order(found)


def _soft_outline(pixels: np.ndarray, labels: np.ndarray,
                  obj: PerceivedObject) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """The object's half-edge outline: its box in the frame and its mask there (holes filled)."""
    height, width = labels.shape
    r0, c0, r1, c1 = obj.bbox
    top, left = max(r0 - WINDOW, 0), max(c0 - WINDOW, 0)
    bottom, right = min(r1 + WINDOW + 1, height), min(c1 + WINDOW + 1, width)
    window, window_labels = pixels[top:bottom, left:right], labels[top:bottom, left:right]
    outside = np.ones(window_labels.shape, dtype=bool)
    outside[max(r0 - top - 1, 0):r1 - top + 2, max(c0 - left - 1, 0):c1 - left + 2] = False
    background_pixels = window[outside & (window_labels >= N_OBJECT_COLORS)]  # table or a container's floor
    background = (np.median(background_pixels, axis=0) if len(background_pixels) >= 8
                  else np.asarray(TABLE_COLOR, dtype=np.float32))
    basis = np.stack([np.asarray(obj.mean_rgb, dtype=np.float32), background], axis=1)
    (share_object, share_background), *_ = np.linalg.lstsq(basis, window.reshape(-1, 3).T, rcond=None)
    total = share_object + share_background
    share = np.where(total > _MIN_WEIGHT, share_object / np.maximum(total, 1e-6), 0.0).reshape(window_labels.shape)
    parts, _ = ndimage.label(share >= 0.5)
    centre = parts[(r0 + r1) // 2 - top, (c0 + c1) // 2 - left]
    if centre == 0:
        return None
    comp = ndimage.binary_fill_holes(parts == centre)
    rows, cols = np.nonzero(comp)
    box = (top + int(rows.min()), left + int(cols.min()), top + int(rows.max()), left + int(cols.max()))
    return box, comp[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
