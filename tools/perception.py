"""Objects and motion read from pixels, with no learned weights.

Both offline agents see the world only through this module: every pixel is
assigned to the nearest known material (table, six object colours, three
container materials) up to a brightness factor, connected regions become
objects, and their shape, size and position follow from the region's outline.
A region whose top edge is covered by another object is a stacked-on base; an
object resting on a region below it is stacked (its height follows).

It knows what the tabletop world looks like (its palette and camera), the way
a detector trained on that world would, but nothing about how a video was
made.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from functools import lru_cache

import numpy as np
from pydantic import BaseModel
from scipy import ndimage

from .world.render import ELEVATION
from .world.scene import (
    BLOCK_HALF,
    CONTAINER_COLOR_NAMES,
    CONTAINER_COLORS,
    CONTAINER_HALF,
    OBJECT_COLORS,
    SIZE_HALF,
    TABLE_COLOR,
    TABLE_SIZE,
    ObjectBody,
    make_object_id,
)

_CLASS_NAMES: list[str] = [*OBJECT_COLORS, *CONTAINER_COLORS, "table"]
_CLASS_RGB = np.array([*OBJECT_COLORS.values(), *CONTAINER_COLORS.values(), TABLE_COLOR], dtype=np.float32)
_TABLE = len(_CLASS_NAMES) - 1
_UNKNOWN = -1
_N_OBJECT_COLORS = len(OBJECT_COLORS)
MAX_RESIDUAL = 38.0
"""Pixels further than this (RGB units) from every material are 'unknown'."""


class PerceivedObject(ObjectBody, BaseModel):
    """One object as seen in a frame, in table units."""

    id: str = ""
    shape: str
    color: str
    size: str = "medium"
    x: float
    y: float
    z: float = 0.0
    bbox: tuple[int, int, int, int]
    """Pixel rows and columns (r0, c0, r1, c1), inclusive."""
    mean_rgb: tuple[float, float, float]
    pixels: int
    occluded: bool = False
    """Its top is hidden under a stacked object."""


def _classify_colors(pix: np.ndarray) -> np.ndarray:
    """Nearest material of each RGB row (N, 3) float32, up to a brightness factor."""
    dots = pix @ _CLASS_RGB.T
    k = np.clip(dots / np.sum(_CLASS_RGB**2, axis=1), 0.5, 1.25)
    resid = np.linalg.norm(pix[:, None, :] - k[..., None] * _CLASS_RGB[None], axis=2)
    labels = np.argmin(resid, axis=1)
    labels[resid[np.arange(len(pix)), labels] > MAX_RESIDUAL] = _UNKNOWN
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
    """Material index per pixel (see `_CLASS_NAMES`), -1 where none fits."""
    q = (frame >> (8 - _LUT_BITS)).astype(np.int32)
    index = (q[..., 0] << (2 * _LUT_BITS)) | (q[..., 1] << _LUT_BITS) | q[..., 2]
    return _lookup_table()[index].astype(np.int64)


def _nearest_size(half: float) -> str:
    return min(SIZE_HALF, key=lambda s: abs(SIZE_HALF[s] - half))


_CORNER_OFFSETS = ((0, 0), (0, 1), (1, 0))


def _has_square_corners(mask: np.ndarray) -> bool:
    """A square's bounding box has filled corners; a circle's does not."""
    h, w = mask.shape
    hits = 0
    for r, c in ((0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1)):
        dr = 1 if r == 0 else -1
        dc = 1 if c == 0 else -1
        hits += sum(bool(mask[r + a * dr, c + b * dc]) for a, b in _CORNER_OFFSETS)
    return hits >= 8


_MARGIN = 2
"""Rows and columns around a material's pixels that a one-step closing can reach (dilation, then erosion)."""


def _components(labels: np.ndarray, min_pixels: int):
    """(class index, region slice, boolean mask) for each sizeable region.

    Each material is processed inside the bounding box of its pixels plus a two-pixel margin: a
    closing and a labelling there give exactly what they give on the whole frame (nothing of that
    material lies outside), at a fraction of the cost."""
    regions = []
    height, width = labels.shape
    boxes = ndimage.find_objects(labels + 1, max_label=_TABLE)  # boxes[L] is material L (unknown is 0)
    for cls in range(_TABLE):
        box = boxes[cls]
        if box is None:
            continue
        r0, c0 = max(box[0].start - _MARGIN, 0), max(box[1].start - _MARGIN, 0)
        crop = (slice(r0, min(box[0].stop + _MARGIN, height)), slice(c0, min(box[1].stop + _MARGIN, width)))
        mask = labels[crop] == cls
        if cls < _N_OBJECT_COLORS:  # highlights inside a ball are 'unknown': close them
            mask = ndimage.binary_closing(mask, iterations=1) | mask
        lab, n = ndimage.label(mask)
        for i, sl in enumerate(ndimage.find_objects(lab), start=1):
            comp = lab[sl] == i
            if comp.sum() >= min_pixels and min(comp.shape) >= 3:  # no streaks or slivers
                whole = (slice(sl[0].start + r0, sl[0].stop + r0), slice(sl[1].start + c0, sl[1].stop + c0))
                regions.append((cls, whole, comp))
    return regions


SEEN_FRAMES = 512
"""Frames whose perception is remembered (a loop sees each accepted frame several times: as a
segment's last frame, as the next conditioning frame, as that segment's first frame)."""
_seen: OrderedDict[bytes, list[PerceivedObject]] = OrderedDict()
_seen_lock = threading.Lock()


def perceive(frame: np.ndarray) -> list[PerceivedObject]:
    """Every object in an RGB frame, with ids like `red_ball`, `bowl` (fresh objects: callers may change them)."""
    frame = np.ascontiguousarray(frame)
    key = hashlib.blake2b(frame.data, digest_size=16, person=str(frame.shape).encode()[:16]).digest()
    with _seen_lock:
        cached = _seen.get(key)
        if cached is not None:
            _seen.move_to_end(key)
    if cached is None:
        cached = _perceive(frame)
        with _seen_lock:
            _seen[key] = cached
            while len(_seen) > SEEN_FRAMES:
                _seen.popitem(last=False)
    return [o.model_copy() for o in cached]


def _perceive(frame: np.ndarray) -> list[PerceivedObject]:
    height, width = frame.shape[:2]
    sx, sy = width / TABLE_SIZE, height / TABLE_SIZE
    labels = classify_pixels(frame)
    regions = _components(labels, min_pixels=max(int(10 * sx * sy), 4))
    owner = np.full(labels.shape, -1, dtype=np.int32)
    for idx, (cls, sl, comp) in enumerate(regions):
        if cls < _N_OBJECT_COLORS:
            owner[sl][comp] = idx
    found: list[PerceivedObject | None] = []
    for idx, (cls, sl, comp) in enumerate(regions):
        r0, r1 = sl[0].start, sl[0].stop - 1
        c0, c1 = sl[1].start, sl[1].stop - 1
        rgb = frame[sl][comp & (labels[sl] == cls)].reshape(-1, 3).mean(axis=0)
        common = {"bbox": (r0, c0, r1, c1), "mean_rgb": tuple(float(v) for v in rgb), "pixels": int(comp.sum())}
        w_units, h_units = (c1 - c0) / sx, (r1 - r0) / sy
        if cls >= _N_OBJECT_COLORS:
            shape = list(CONTAINER_COLORS)[cls - _N_OBJECT_COLORS]
            found.append(PerceivedObject(shape=shape, color=CONTAINER_COLOR_NAMES[shape],
                                         x=(c0 + c1) / 2 / sx, y=(r0 + r1) / 2 / sy, **common))
            continue
        color = _CLASS_NAMES[cls]
        above = owner[r0 - 1, c0:c1 + 1] if r0 > 0 else np.array([], dtype=np.int32)
        occluded = above.size > 0 and np.mean((above >= 0) & (above != idx)) >= 0.5
        if occluded:
            is_block = w_units / 2 > (SIZE_HALF["large"] + BLOCK_HALF[0]) / 2
            shape = "block" if is_block else "cube"
            size = "medium" if is_block else _nearest_size(w_units / 2)
            half_y = BLOCK_HALF[1] if is_block else SIZE_HALF[size]
            found.append(PerceivedObject(shape=shape, color=color, size=size, x=(c0 + c1) / 2 / sx,
                                         y=r1 / sy - half_y, occluded=True, **common))
            continue
        if w_units > 1.6 * h_units:
            shape, size = "block", "medium"
        else:
            shape = "cube" if _has_square_corners(comp) else "ball"
            size = _nearest_size(w_units / 2)
        found.append(PerceivedObject(shape=shape, color=color, size=size, x=(c0 + c1) / 2 / sx,
                                     y=(r0 + r1) / 2 / sy, **common))
    _place_stacked(found, owner, sy)
    objects = [o for o in found if o is not None]
    objects.sort(key=lambda o: (o.y, o.x))
    taken: set[str] = set()
    for obj in objects:
        obj.id = make_object_id(obj.shape, obj.color, taken)
        taken.add(obj.id)
    return objects


def _place_stacked(found: list, owner: np.ndarray, sy: float) -> None:
    """Give an object resting on another its height, and read the base by its bottom edge.

    Resting objects never touch (the world keeps gaps), so an object whose
    bottom edge sits on another object's pixels is stacked on it.
    """
    for idx, obj in enumerate(found):
        if obj is None or obj.is_container:
            continue
        r0, c0, r1, c1 = obj.bbox
        if r1 + 1 >= owner.shape[0]:
            continue
        below = owner[r1 + 1, c0:c1 + 1]
        hits = below[(below >= 0) & (below != idx)]
        if hits.size < 0.3 * below.size:
            continue
        base = found[int(np.bincount(hits).argmax())]
        if base is None:
            continue
        base.y = base.bbox[2] / sy - base.half_extent[1]
        obj.z = base.z + base.height
        obj.y = (r0 + r1) / 2 / sy + ELEVATION * obj.z


def match_objects(
    known: dict[str, tuple[str, str, str, float, float]],
    seen: list[PerceivedObject],
    max_distance: float = 60.0,
) -> dict[str, PerceivedObject]:
    """Map known ids (shape, color, size, x, y) to perceived objects of the same look.

    Greedy by distance, so a moved object is still found as long as nothing of
    the same look is closer to where it was.
    """
    pairs = []
    for oid, (shape, color, size, x, y) in known.items():
        for j, obj in enumerate(seen):
            if obj.shape == shape and obj.color == color and (obj.size == size or shape in CONTAINER_HALF):
                pairs.append((float(np.hypot(obj.x - x, obj.y - y)), oid, j))
    pairs.sort()
    out: dict[str, PerceivedObject] = {}
    used: set[int] = set()
    for dist, oid, j in pairs:
        if oid in out or j in used or dist > max_distance:
            continue
        out[oid] = seen[j]
        used.add(j)
    return out
