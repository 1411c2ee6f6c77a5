"""Pixels to materials to regions: the image operations under perception, batched over frames.

Every pixel is assigned to the nearest known material (table, six object
colours, three container materials) up to a brightness factor, through a
lookup table over 6-bit colours. Each material's connected regions are found
inside the bounding box of that material's pixels across a stack of frames,
with structuring elements that never connect two frames: one closing and one
labelling per material for a whole segment give exactly what they give frame
by frame on whole frames (nothing of that material lies outside the box),
with the per-call overhead paid once per segment instead of once per frame.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage

from .world.scene import CONTAINER_COLORS, OBJECT_COLORS, TABLE_COLOR

CLASS_NAMES: list[str] = [*OBJECT_COLORS, *CONTAINER_COLORS, "table"]
_CLASS_RGB = np.array([*OBJECT_COLORS.values(), *CONTAINER_COLORS.values(), TABLE_COLOR], dtype=np.float32)
TABLE = len(CLASS_NAMES) - 1
UNKNOWN = -1
N_OBJECT_COLORS = len(OBJECT_COLORS)
MAX_RESIDUAL = 38.0
"""Pixels further than this (RGB units) from every material are 'unknown'."""


def _classify_colors(pix: np.ndarray) -> np.ndarray:
    """Nearest material of each RGB row (N, 3) float32, up to a brightness factor."""
    dots = pix @ _CLASS_RGB.T
    k = np.clip(dots / np.sum(_CLASS_RGB**2, axis=1), 0.5, 1.25)
    resid = np.linalg.norm(pix[:, None, :] - k[..., None] * _CLASS_RGB[None], axis=2)
    labels = np.argmin(resid, axis=1)
    labels[resid[np.arange(len(pix)), labels] > MAX_RESIDUAL] = UNKNOWN
    return labels.astype(np.int8)


_LUT_BITS = 6


@lru_cache(maxsize=1)
def _lookup_table() -> np.ndarray:
    """Material of every colour at 6 bits per channel (262,144 entries, built once)."""
    step = 1 << (8 - _LUT_BITS)
    levels = np.arange(0, 256, step, dtype=np.float32) + (step - 1) / 2
    r, g, b = np.meshgrid(levels, levels, levels, indexing="ij")
    pix = np.stack([r.ravel(), g.ravel(), b.ravel()], axis=1)
    return np.concatenate([_classify_colors(chunk) for chunk in np.array_split(pix, 8)])


def classify_pixels(frame: np.ndarray) -> np.ndarray:
    """Material index per pixel (int8, see `CLASS_NAMES`), -1 where none fits; any leading shape (frames)."""
    q = frame >> (8 - _LUT_BITS)
    index = q[..., 0].astype(np.uint32) << (2 * _LUT_BITS)
    index |= q[..., 1].astype(np.uint32) << _LUT_BITS
    index |= q[..., 2]
    return _lookup_table().take(index)



MARGIN = 2
"""Rows and columns around a material's pixels that a one-step closing can reach (dilation, then erosion)."""
_CROSS_IN_FRAME = np.zeros((3, 3, 3), dtype=bool)
_CROSS_IN_FRAME[1] = ndimage.generate_binary_structure(2, 1)
"""The 4-connected cross of 2-D closing and labelling, with nothing above or below it in time."""

def close(masks: np.ndarray) -> np.ndarray:
    """Binary closing of each (H, W) mask of a (N, H, W) stack with the 4-connected cross, outside the
    image counting as empty: `ndimage.binary_closing(masks, structure=<the cross in each frame>)`,
    written as shifts (the same pixels, several times faster on small masks)."""
    def shifted(m: np.ndarray) -> tuple[np.ndarray, ...]:
        padded = np.zeros((m.shape[0], m.shape[1] + 2, m.shape[2] + 2), dtype=bool)
        padded[:, 1:-1, 1:-1] = m
        return (padded[:, 1:-1, 1:-1], padded[:, :-2, 1:-1], padded[:, 2:, 1:-1], padded[:, 1:-1, :-2],
                padded[:, 1:-1, 2:])

    centre, up, down, left, right = shifted(masks)
    dilated = centre | up | down | left | right
    centre, up, down, left, right = shifted(dilated)
    return centre & up & down & left & right


Region = tuple[int, tuple[slice, slice], np.ndarray]
"""(material index, the region's rows and columns in the frame, its boolean mask there)."""


def regions_per_frame(labels: np.ndarray, min_pixels: int) -> list[list[Region]]:
    """Each frame's sizeable regions of `labels` (T, H, W), material by material, in scan order.

    Object colours are closed first (highlights inside a ball are 'unknown'); streaks and slivers
    (narrower than 3 pixels, or under `min_pixels`) are dropped."""
    frames, height, width = labels.shape
    out: list[list[Region]] = [[] for _ in range(frames)]
    boxes = ndimage.find_objects(labels + 1, max_label=TABLE)  # boxes[L] is material L (unknown is 0)
    for cls in range(TABLE):
        box = boxes[cls]
        if box is None:
            continue
        r0, c0 = max(box[1].start - MARGIN, 0), max(box[2].start - MARGIN, 0)
        crop = (box[0], slice(r0, min(box[1].stop + MARGIN, height)), slice(c0, min(box[2].stop + MARGIN, width)))
        mask = labels[crop] == cls
        # a material that did not change between frames has the same regions: work on each distinct mask once
        changed = np.ones(len(mask), dtype=bool)
        changed[1:] = np.any(mask[1:] != mask[:-1], axis=(1, 2))
        distinct = mask[changed]
        if cls < N_OBJECT_COLORS:
            distinct = close(distinct) | distinct
        lab, _ = ndimage.label(distinct, structure=_CROSS_IN_FRAME)
        found: list[list[Region]] = [[] for _ in range(len(distinct))]
        for i, sl in enumerate(ndimage.find_objects(lab), start=1):
            comp = lab[sl][0] == i  # a region never spans two frames
            if comp.sum() >= min_pixels and min(comp.shape) >= 3:
                rows = slice(sl[1].start + r0, sl[1].stop + r0)
                cols = slice(sl[2].start + c0, sl[2].stop + c0)
                found[sl[0].start].append((cls, (rows, cols), comp))
        for offset, which in enumerate(np.cumsum(changed) - 1):
            out[box[0].start + offset].extend(found[which])
    return out


def coarse_difference(a: np.ndarray, b: np.ndarray, block: int = 4) -> float:
    """Mean absolute difference of two frames averaged over `block`x`block` pixel blocks.

    A learned video model decodes frame 0 through its VAE, which redraws fine texture and edges (3-5 levels
    of mean difference for tabletop-tiny's, with nothing moved) without the segment starting anywhere else;
    over 4x4 blocks that falls to 1.5-3 levels, while a scene shifted by 3 pixels still differs by 3-6. The
    simulator's frame 0 is the conditioning frame exactly (difference 0 either way)."""
    h, w = (a.shape[0] // block) * block, (a.shape[1] // block) * block

    def coarse(frame: np.ndarray) -> np.ndarray:
        return frame[:h, :w].astype(np.float32).reshape(h // block, block, w // block, block, -1).mean(axis=(1, 3))

    return float(np.mean(np.abs(coarse(a) - coarse(b))))
