"""Objects and motion read from pixels, with no learned weights.

Both offline agents see the world only through this module: every pixel is
assigned to the nearest known material, connected regions become objects
(pixels.py), and their shape, size and position follow from the region's
outline.
A region whose top edge is covered by another object is a stacked-on base; an
object resting on a region below it is stacked (its height follows).

It knows what the tabletop world looks like (its palette and camera), the way
a detector trained on that world would, but nothing about how a video was
made. Perception of a frame is remembered by the frame's content, and a
segment's frames are perceived together (`perceive_frames`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

import numpy as np
import xxhash
from pydantic import BaseModel

from .pixels import (
    CLASS_NAMES,
    N_OBJECT_COLORS,
    Region,
    classify_pixels,
    regions_per_frame,
)
from .world.render import ELEVATION
from .world.scene import (
    BLOCK_HALF,
    CONTAINER_COLOR_NAMES,
    CONTAINER_COLORS,
    CONTAINER_HALF,
    SIZE_HALF,
    TABLE_SIZE,
    ObjectBody,
    WorldObject,
    make_object_id,
)


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


def as_world(obj: PerceivedObject, tint: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> WorldObject:
    """A perceived object as a world object (rounded to whole table units, where resting objects sit), for
    world geometry on what a frame shows: where a verb puts it, what it would collide with."""
    size = obj.size if obj.size in SIZE_HALF else "medium"
    return WorldObject(id=obj.id, shape=obj.shape, color=obj.color, size=size, x=float(round(obj.x)),  # type: ignore[arg-type]
                       y=float(round(obj.y)), z=float(round(obj.z)), tint=tint)


def _nearest_size(half: float) -> str:
    return min(SIZE_HALF, key=lambda s: abs(SIZE_HALF[s] - half))


_CORNER_OFFSETS = ((0, 0), (0, 1), (1, 0))


def _has_square_corners(mask: np.ndarray) -> bool:
    """A square's bounding box has filled corners; a circle's does not (three pixels at each corner). A mask
    one pixel thick (a sliver a learned decoder left) has no corners to read."""
    h, w = mask.shape
    if h < 2 or w < 2:
        return False
    item = mask.item
    hits = 0
    for r, c, dr, dc in ((0, 0, 1, 1), (0, w - 1, 1, -1), (h - 1, 0, -1, 1), (h - 1, w - 1, -1, -1)):
        for a, b in _CORNER_OFFSETS:
            hits += item(r + a * dr, c + b * dc)
    return hits >= 8


SQUARE_FILL = 0.92
"""A region filling this much of its bounding box is square even without sharp corners: a learned decoder
rounds a cube's corners but it still fills ~95 % of its box; the fullest ball region in rendered test
scenes fills 0.88 (a disc: ~0.79)."""
MIN_CONTAINER_PIXELS = 500
"""At 128x128: the smallest container region in rendered test scenes has 1,150 pixels; smaller regions of a
container's colour are blur or texture a learned decoder left, not a bowl."""


def _is_square(mask: np.ndarray) -> bool:
    """Sharp corners, or (corners rounded) a box as wide as high that the region all but fills."""
    h, w = mask.shape
    return _has_square_corners(mask) or (abs(h - w) <= 1 and float(mask.mean()) >= SQUARE_FILL)


V = TypeVar("V")


class FrameCache(Generic[V]):
    """What was computed from a frame, by the frame's digest (`frame_digest`): bounded, least recently used
    out first, safe to share between threads (a server runs episodes in threads)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[bytes, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> V | None:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: bytes, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


SEEN_FRAMES = 512
"""Frames whose perception is remembered (a loop sees each accepted frame several times: as a
segment's last frame, as the next conditioning frame, as that segment's first frame)."""
_seen: FrameCache[list[PerceivedObject]] = FrameCache(SEEN_FRAMES)


def perceive(frame: np.ndarray) -> list[PerceivedObject]:
    """Every object in an RGB frame, with ids like `red_ball`, `bowl` (fresh objects: callers may change them)."""
    return perceive_frames(frame[None])[0]


def perceive_frames(frames: np.ndarray) -> list[list[PerceivedObject]]:
    """`perceive` of every frame of a (T, H, W, 3) stack, the frames not seen before perceived together."""
    keys = [frame_digest(f) for f in frames]
    found = {key: seen for key in dict.fromkeys(keys) if (seen := _seen.get(key)) is not None}
    todo = list(dict.fromkeys(k for k in keys if k not in found))
    if todo:
        first = {key: i for i, key in reversed(list(enumerate(keys)))}
        stack = frames[[first[k] for k in todo]]
        height, width = stack.shape[1:3]
        labels = classify_pixels(stack)
        regions = regions_per_frame(labels, min_pixels=max(int(10 * width * height / TABLE_SIZE**2), 4))
        memo: dict = {}
        for key, frame, frame_labels, frame_regions in zip(todo, stack, labels, regions, strict=True):
            found[key] = _objects(frame, frame_labels, frame_regions, memo)
            _seen.put(key, found[key])
    return [[o.model_copy() for o in found[key]] for key in keys]


def frame_digest(frame: np.ndarray) -> bytes:
    """A frame's identity for a cache: a 128-bit hash of its pixels and shape (xxh3: microseconds)."""
    frame = np.ascontiguousarray(frame)
    return xxhash.xxh3_128_digest(frame.data, seed=hash(frame.shape) & 0xFFFFFFFF)


def _objects(frame: np.ndarray, labels: np.ndarray, regions: list[Region], memo: dict) -> list[PerceivedObject]:
    """Objects from a frame's regions: shape and size from the outline, stacking from the neighbours.

    A region whose outline, occlusion and pixels are those of a region already read in this batch
    (an object that did not move between frames) is read from `memo`."""
    height, width = frame.shape[:2]
    sx, sy = width / TABLE_SIZE, height / TABLE_SIZE
    owner = np.full(labels.shape, -1, dtype=np.int32)
    for idx, (cls, sl, comp) in enumerate(regions):
        if cls < N_OBJECT_COLORS:
            owner[sl][comp] = idx
    found: list[PerceivedObject] = []
    for idx, (cls, sl, comp) in enumerate(regions):
        r0, c0 = sl[0].start, sl[1].start
        occluded = False
        if cls < N_OBJECT_COLORS and r0 > 0:  # its top edge is covered by another object
            above = owner[r0 - 1, c0:sl[1].stop]
            occluded = 2 * np.count_nonzero((above >= 0) & (above != idx)) >= above.size
        key = (cls, r0, c0, comp.shape, occluded, xxhash.xxh3_128_digest(np.packbits(comp).data),
               xxhash.xxh3_128_digest(np.ascontiguousarray(frame[sl]).data))
        if key not in memo:
            memo[key] = _region_object(frame, labels, cls, sl, comp, occluded, sx, sy)
        found.append(memo[key].model_copy())
    place_stacked(found, owner, sy)  # indexes `found` by region: filter after it
    min_container = MIN_CONTAINER_PIXELS * height * width / TABLE_SIZE**2
    return named_in_reading_order([o for o in found if not o.is_container or o.pixels >= min_container])


def named_in_reading_order(found: list[PerceivedObject]) -> list[PerceivedObject]:
    """Objects sorted back to front, left to right, each given its id (`red_ball`, `red_ball_2`, ...)."""
    found.sort(key=lambda o: (o.y, o.x))
    taken: set[str] = set()
    for obj in found:
        obj.id = make_object_id(obj.shape, obj.color, taken)
        taken.add(obj.id)
    return found


def _region_object(frame: np.ndarray, labels: np.ndarray, cls: int, sl: tuple[slice, slice], comp: np.ndarray,
                   occluded: bool, sx: float, sy: float) -> PerceivedObject:
    own = frame[sl][comp & (labels[sl] == cls)]
    rgb = own.sum(axis=0) / len(own)  # integer sums, then one division: what mean() gives, faster
    bbox = (sl[0].start, sl[1].start, sl[0].stop - 1, sl[1].stop - 1)
    return object_from_outline(cls, bbox, comp, occluded, tuple(float(v) for v in rgb), sx, sy)


def object_from_outline(cls: int, bbox: tuple[int, int, int, int], comp: np.ndarray, occluded: bool,
                        mean_rgb: tuple[float, float, float], sx: float, sy: float) -> PerceivedObject:
    """An object's look and place from its material, outline (`comp` inside `bbox`) and occlusion."""
    r0, c0, r1, c1 = bbox
    common = {"bbox": bbox, "mean_rgb": mean_rgb, "pixels": int(np.count_nonzero(comp))}
    w_units, h_units = (c1 - c0) / sx, (r1 - r0) / sy
    if cls >= N_OBJECT_COLORS:
        shape = list(CONTAINER_COLORS)[cls - N_OBJECT_COLORS]
        return PerceivedObject(shape=shape, color=CONTAINER_COLOR_NAMES[shape], x=(c0 + c1) / 2 / sx,
                               y=(r0 + r1) / 2 / sy, **common)
    color = CLASS_NAMES[cls]
    if occluded:  # a stacked-on base: its hidden top says nothing of its shape
        is_block = w_units / 2 > (SIZE_HALF["large"] + BLOCK_HALF[0]) / 2
        shape = "block" if is_block else "cube"
        size = "medium" if is_block else _nearest_size(w_units / 2)
        half_y = BLOCK_HALF[1] if is_block else SIZE_HALF[size]
        return PerceivedObject(shape=shape, color=color, size=size, x=(c0 + c1) / 2 / sx, y=r1 / sy - half_y,
                               occluded=True, **common)
    if w_units > 1.6 * h_units:
        shape, size = "block", "medium"
    else:
        shape = "cube" if _is_square(comp) else "ball"
        size = _nearest_size(w_units / 2)
    return PerceivedObject(shape=shape, color=color, size=size, x=(c0 + c1) / 2 / sx, y=(r0 + r1) / 2 / sy,
                           **common)


def place_stacked(found: list, owner: np.ndarray, sy: float, gap: int = 0) -> None:
    """Give an object resting on another its height, and read the base by its bottom edge.

    Resting objects never touch (the world keeps gaps), so an object whose
    bottom edge sits on another object's pixels (within `gap` rows: a soft frame's outlines are
    separated by a seam of mixed pixels) is stacked on it.
    """
    for idx, obj in enumerate(found):
        if obj.is_container:
            continue
        r0, c0, r1, c1 = obj.bbox
        if r1 + 1 >= owner.shape[0]:
            continue
        below = owner[r1 + 1:r1 + 2 + gap, c0:c1 + 1]
        other = (below >= 0) & (below != idx)
        columns = np.flatnonzero(other.any(axis=0))  # columns with another object's pixel below the edge
        hits = below[other.argmax(axis=0)[columns], columns].astype(np.int64)  # the nearest one per column
        if hits.size < 0.3 * below.shape[1]:
            continue
        base = found[int(np.bincount(hits).argmax())]
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
