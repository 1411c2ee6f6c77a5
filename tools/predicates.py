"""Goal predicates over object states, shared vocabulary of planner and critic.

A predicate is text such as `inside(red_ball, bowl)` or `at(blue_cube, 40, 60)`
and is evaluated on anything that looks like an object state (a world object
for ground truth, a perceived object for the critic). The geometry lives here
once so that the critic's check and the benchmark's ground truth mean the same.
"""

from __future__ import annotations

import re
from typing import Protocol

from pydantic import BaseModel

PLACE_TOLERANCE = 5.0
"""How close (table units) `at(...)` must be."""
EDGE_MARGIN = 16.0
"""How near the table's border counts as 'at the edge'."""
ROW_TOLERANCE = 10.0
"""How far apart in depth two objects may be and still stand 'left of' each other."""


class ObjectState(Protocol):
    id: str
    shape: str
    x: float
    y: float
    z: float

    @property
    def half_extent(self) -> tuple[int, int]: ...

    @property
    def height(self) -> float: ...


class Predicate(BaseModel):
    """`name(args...)`: object ids, a direction word, or numbers."""

    name: str
    args: list[str]

    def __str__(self) -> str:
        return f"{self.name}({', '.join(self.args)})"

    @classmethod
    def parse(cls, text: str) -> Predicate:
        m = re.fullmatch(r"\s*(\w+)\((.*)\)\s*", text)
        if not m:
            raise ValueError(f"not a predicate: {text!r}")
        return cls(name=m.group(1), args=[a.strip() for a in m.group(2).split(",") if a.strip()])

    @property
    def subjects(self) -> list[str]:
        """The object ids the predicate mentions."""
        return [a for a in self.args if not _is_number(a) and a not in _DIRECTIONS]


_DIRECTIONS = {"left", "right", "front", "back", "center"}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _inside(a: ObjectState, c: ObjectState) -> bool:
    r = c.half_extent[0] - 2.0
    if c.shape == "box":
        return abs(a.x - c.x) <= r and abs(a.y - c.y) <= r
    return (a.x - c.x) ** 2 + (a.y - c.y) ** 2 <= r * r


def _on(a: ObjectState, b: ObjectState) -> bool:
    hx, hy = b.half_extent
    return abs(a.z - (b.z + b.height)) <= 2.5 and abs(a.x - b.x) <= hx and abs(a.y - b.y) <= hy


def _at_edge(a: ObjectState, side: str, table: float) -> bool:
    hx, hy = a.half_extent
    return {
        "left": a.x - hx <= EDGE_MARGIN,
        "right": a.x + hx >= table - EDGE_MARGIN,
        "back": a.y - hy <= EDGE_MARGIN + 8,
        "front": a.y + hy >= table - EDGE_MARGIN,
        "center": abs(a.x - table / 2) <= 16 and abs(a.y - table / 2) <= 16,
    }[side]


def _left_of(a: ObjectState, b: ObjectState) -> bool:
    return a.x + a.half_extent[0] < b.x - b.half_extent[0] and abs(a.y - b.y) <= ROW_TOLERANCE


def evaluate(predicate: Predicate, objects: dict[str, ObjectState], table: float = 128.0) -> bool:
    """Whether `predicate` holds; False when an object it names is missing."""
    try:
        o = [objects[s] for s in predicate.subjects]
    except KeyError:
        return False
    name, args = predicate.name, predicate.args
    if name == "inside":
        return _inside(o[0], o[1])
    if name == "on":
        return _on(o[0], o[1])
    if name == "at":
        x, y = float(args[1]), float(args[2])
        return (o[0].x - x) ** 2 + (o[0].y - y) ** 2 <= PLACE_TOLERANCE**2 and o[0].z <= 1.0
    if name == "at_edge":
        return _at_edge(o[0], args[1], table)
    if name == "left_of":
        return _left_of(o[0], o[1])
    if name == "right_of":
        return _left_of(o[1], o[0])
    if name == "on_table":
        return o[0].z <= 1.0
    raise ValueError(f"unknown predicate {name!r}")


def distance_to_goal(predicate: Predicate, objects: dict[str, ObjectState]) -> float | None:
    """Roughly how far (table units) the first object is from satisfying `predicate`.

    Used to tell an action that stopped part way from one that did not happen.
    """
    try:
        o = [objects[s] for s in predicate.subjects]
    except KeyError:
        return None
    if predicate.name in ("inside", "on", "left_of", "right_of") and len(o) > 1:
        return float(((o[0].x - o[1].x) ** 2 + (o[0].y - o[1].y) ** 2) ** 0.5)
    if predicate.name == "at":
        x, y = float(predicate.args[1]), float(predicate.args[2])
        return float(((o[0].x - x) ** 2 + (o[0].y - y) ** 2) ** 0.5)
    return None
