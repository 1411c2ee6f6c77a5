"""Where things go on the table: container slots, named places, beside another object.

World geometry shared by the simulated video model (to place what a prompt asks for)
and the ground-truth executor that renders error-free reference videos.
"""

from __future__ import annotations

import numpy as np

from .scene import TABLE_SIZE, Scene, WorldObject, footprints_clear

EDGE_GAP = 8


def container_slot(scene: Scene, obj: WorldObject, container: WorldObject,
                   rng: np.random.Generator) -> tuple[float, float]:
    """A free spot inside a container (its centre when it is full)."""
    inner = container.half_extent[0] - max(obj.half_extent) - 3
    contents = [o for o in scene.movables if o.id != obj.id
                and abs(o.x - container.x) <= container.half_extent[0]
                and abs(o.y - container.y) <= container.half_extent[1]]
    spots = [(dx, dy) for dx in range(-inner, inner + 1) for dy in range(-inner, inner + 1)
             if container.shape == "box" or dx * dx + dy * dy <= inner * inner]
    order = rng.permutation(len(spots))
    for i in order:
        x, y = container.x + spots[i][0], container.y + spots[i][1]
        probe = obj.model_copy(update={"x": x, "y": y})
        if all(footprints_clear(probe, o, gap=3.0) for o in contents):
            return float(x), float(y)
    return float(container.x), float(container.y)


def _fits(x: float, y: float, half: tuple[int, int], others: list[tuple[float, float, int, int]]) -> bool:
    hx, hy = half
    if not (hx + 2 <= x <= TABLE_SIZE - hx - 2 and hy + 12 <= y <= TABLE_SIZE - hy - 2):
        return False
    return all(abs(x - ox) >= hx + ohx + 3 or abs(y - oy) >= hy + ohy + 3 for ox, oy, ohx, ohy in others)


def _rings(direction: tuple[int, int]):
    """Offsets along `direction` first (keep the row), then in growing square rings."""
    yield 0, 0
    if direction != (0, 0):
        for r in range(1, TABLE_SIZE):
            yield direction[0] * r, direction[1] * r
    for r in range(1, TABLE_SIZE // 2):
        for dx in range(-r, r + 1):
            yield dx, -r
            yield dx, r
        for dy in range(-r + 1, r):
            yield -r, dy
            yield r, dy


def nearest_free(scene: Scene, obj: WorldObject, x: float, y: float,
                 direction: tuple[int, int] = (0, 0)) -> tuple[float, float]:
    """The free spot closest to (x, y), searching along `direction` first."""
    others = [(o.x, o.y, *o.half_extent) for o in scene.objects if o.id != obj.id]
    for dx, dy in _rings(direction):
        cx, cy = float(round(x + dx)), float(round(y + dy))
        if _fits(cx, cy, obj.half_extent, others):
            return cx, cy
    return float(round(x)), float(round(y))


def named_place(scene: Scene, obj: WorldObject, place: str) -> tuple[float, float]:
    """A spot for `place` (left/right/front/back/center), keeping the other coordinate."""
    hx, hy = obj.half_extent
    goal = {
        "left": (EDGE_GAP + hx, obj.y, (0, 1)),
        "right": (TABLE_SIZE - EDGE_GAP - hx, obj.y, (0, 1)),
        "back": (obj.x, EDGE_GAP + 12 + hy, (1, 0)),
        "front": (obj.x, TABLE_SIZE - EDGE_GAP - hy, (1, 0)),
        "center": (TABLE_SIZE / 2, TABLE_SIZE / 2, (0, 0)),
    }[place]
    return nearest_free(scene, obj, goal[0], goal[1], goal[2])


def beside(scene: Scene, obj: WorldObject, anchor: WorldObject, side: str) -> tuple[float, float]:
    """Just left or right of `anchor`, in the same row."""
    sign = -1 if side == "left_of" else 1
    x = anchor.x + sign * (anchor.half_extent[0] + obj.half_extent[0] + 5)
    return nearest_free(scene, obj, x, anchor.y, (sign, 0))
