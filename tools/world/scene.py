"""The tabletop scene: objects, their looks, and a seeded scene generator.

Coordinates are *table units*: one unit is one pixel of the 128x128 reference
render; x grows to the right, y grows towards the viewer (down the image), z
is the height above the table. Resting objects sit at integer (x, y) so that a
render can be read back exactly (see tools/perception.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

import numpy as np
from pydantic import BaseModel, Field

TABLE_SIZE = 128
"""Side of the square table in table units (= pixels at the reference size)."""

Shape = Literal["ball", "cube", "block", "bowl", "plate", "box"]
MOVABLE_SHAPES: tuple[str, ...] = ("ball", "cube", "block")
CONTAINER_SHAPES: tuple[str, ...] = ("bowl", "plate", "box")

OBJECT_COLORS: dict[str, tuple[int, int, int]] = {
    "red": (210, 40, 40),
    "orange": (240, 130, 30),
    "yellow": (235, 210, 40),
    "green": (50, 160, 70),
    "blue": (40, 90, 210),
    "purple": (140, 60, 180),
}
CONTAINER_COLORS: dict[str, tuple[int, int, int]] = {
    "bowl": (240, 240, 235),  # white ceramic
    "plate": (60, 62, 72),  # charcoal slate
    "box": (120, 75, 45),  # brown cardboard
}
CONTAINER_COLOR_NAMES: dict[str, str] = {"bowl": "white", "plate": "black", "box": "brown"}
TABLE_COLOR: tuple[int, int, int] = (205, 175, 135)

SIZE_HALF: dict[str, int] = {"small": 5, "medium": 7, "large": 9}
"""Half extent (radius of a ball, half side of a cube) per size word."""
BLOCK_HALF = (12, 5)
"""Blocks are long bars of one size: half length along x, half depth along y."""
CONTAINER_HALF: dict[str, int] = {"bowl": 23, "plate": 21, "box": 21}


class ObjectBody:
    """What an object's shape and size make of it, for objects in the world and objects perceived."""

    shape: str
    color: str
    size: str

    @property
    def is_container(self) -> bool:
        return self.shape in CONTAINER_SHAPES

    @property
    def half_extent(self) -> tuple[int, int]:
        """Half width and half depth of the footprint, in table units."""
        if self.shape in CONTAINER_SHAPES:
            h = CONTAINER_HALF[self.shape]
            return h, h
        if self.shape == "block":
            return BLOCK_HALF
        h = SIZE_HALF[self.size]
        return h, h

    @property
    def height(self) -> float:
        """How tall the object stands (what a stacked object rests on)."""
        if self.shape in CONTAINER_SHAPES:
            return 0.0
        if self.shape == "block":
            return 2.0 * BLOCK_HALF[1]
        return 2.0 * SIZE_HALF[self.size]

    def describe(self) -> str:
        """Natural words for this object, e.g. 'small red ball', 'white bowl'."""
        return object_words(self.shape, self.color, self.size)


class WorldObject(ObjectBody, BaseModel):
    """One object on the table. `tint` multiplies its colour (colour drift)."""

    id: str
    shape: Shape
    color: str
    size: Literal["small", "medium", "large"] = "medium"
    x: float
    y: float
    z: float = 0.0
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)

    @property
    def base_rgb(self) -> np.ndarray:
        rgb = CONTAINER_COLORS[self.shape] if self.is_container else OBJECT_COLORS[self.color]
        return np.asarray(rgb, dtype=np.float32) * np.asarray(self.tint, dtype=np.float32)



class Scene(BaseModel):
    """Everything on the table at one instant."""

    objects: list[WorldObject] = Field(default_factory=list)

    def get(self, object_id: str) -> WorldObject:
        for obj in self.objects:
            if obj.id == object_id:
                return obj
        raise KeyError(object_id)

    def replace(self, obj: WorldObject) -> Scene:
        return Scene(objects=[obj if o.id == obj.id else o for o in self.objects])

    @property
    def movables(self) -> list[WorldObject]:
        return [o for o in self.objects if not o.is_container]

    @property
    def containers(self) -> list[WorldObject]:
        return [o for o in self.objects if o.is_container]


def object_words(shape: str, color: str, size: str, size_shown: bool = True) -> str:
    """How SPIRAL names an object: 'small red ball', 'red ball' without its size, 'red block' (blocks
    come in one size), 'white bowl'. Every agent and the simulator name objects through this."""
    if shape in CONTAINER_SHAPES or shape == "block" or not size_shown:
        return f"{color} {shape}"
    return f"{size} {color} {shape}"


class Nameable(Protocol):
    shape: str
    color: str
    size: str

    @property
    def is_container(self) -> bool: ...


def name_among(obj: Nameable, objects: Sequence[Nameable], with_size: bool = False) -> str:
    """Colour and shape, plus the size when another object shares both (or when asked)."""
    twins = any(o is not obj and o.color == obj.color and o.shape == obj.shape for o in objects)
    return object_words(obj.shape, obj.color, obj.size, size_shown=with_size or twins)


def make_object_id(shape: str, color: str, taken: set[str]) -> str:
    """`red_ball`, then `red_ball_2`, ... so ids are unique and readable."""
    base = shape if shape in CONTAINER_SHAPES else f"{color}_{shape}"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    return candidate


def footprints_clear(a: WorldObject, b: WorldObject, gap: float = 4.0) -> bool:
    """Whether two footprints are at least `gap` apart (axis-aligned boxes)."""
    ax, ay = a.half_extent
    bx, by = b.half_extent
    return abs(a.x - b.x) >= ax + bx + gap or abs(a.y - b.y) >= ay + by + gap


def interpenetrating(scene: Scene) -> list[tuple[str, str]]:
    """Pairs of movables whose footprints overlap at the same height: physically impossible
    (an object resting on another is at a different height and does not count)."""
    movables = scene.movables
    pairs = []
    for i, a in enumerate(movables):
        for b in movables[i + 1:]:
            if abs(a.z - b.z) < 1.0 and not footprints_clear(a, b, gap=-1.0):
                pairs.append((a.id, b.id))
    return pairs


def free_spot(
    scene: Scene,
    probe: WorldObject,
    rng: np.random.Generator,
    *,
    ignore: tuple[str, ...] = (),
    margin: int = 6,
    tries: int = 400,
) -> tuple[int, int] | None:
    """An integer table position where `probe` fits without touching anything."""
    hx, hy = probe.half_extent
    others = [o for o in scene.objects if o.id not in ignore and o.id != probe.id]
    for _ in range(tries):
        x = int(rng.integers(margin + hx, TABLE_SIZE - margin - hx + 1))
        y = int(rng.integers(margin + hy + 12, TABLE_SIZE - margin - hy + 1))
        moved = probe.model_copy(update={"x": float(x), "y": float(y), "z": 0.0})
        if all(footprints_clear(moved, o) for o in others):
            return x, y
    return None


def random_scene(
    seed: int,
    *,
    num_objects: int = 5,
    containers: tuple[str, ...] = ("bowl",),
    shapes: tuple[str, ...] = MOVABLE_SHAPES,
    colors: tuple[str, ...] = tuple(OBJECT_COLORS),
) -> Scene:
    """A seeded, uncluttered scene: containers first, then movable objects.

    No two movables look the same (words could not tell them apart). The same
    seed always gives the same scene. Raises ValueError when the table cannot
    hold what was asked for.
    """
    rng = np.random.default_rng(seed)
    problem = ""
    for _ in range(20):  # a layout that boxed itself in is retried with the same generator
        try:
            return canonical_ids(_layout(rng, num_objects, containers, shapes, colors))
        except ValueError as exc:
            problem = str(exc)
    raise ValueError(problem)


def canonical_ids(scene: Scene) -> Scene:
    """Ids in reading order (back to front, then left to right), as perception names them."""
    taken: set[str] = set()
    renamed = []
    for obj in sorted(scene.objects, key=lambda o: (o.y, o.x)):
        oid = make_object_id(obj.shape, obj.color, taken)
        taken.add(oid)
        renamed.append(obj.model_copy(update={"id": oid}))
    return Scene(objects=renamed)


def _layout(rng: np.random.Generator, num_objects: int, containers: tuple[str, ...],
            shapes: tuple[str, ...], colors: tuple[str, ...]) -> Scene:
    scene = Scene()
    taken: set[str] = set()
    for shape in containers:
        obj = WorldObject(id=make_object_id(shape, "", taken), shape=shape,  # type: ignore[arg-type]
                          color=CONTAINER_COLOR_NAMES[shape], x=0, y=0)
        spot = free_spot(scene, obj, rng, margin=4)
        if spot is None:
            raise ValueError(f"no room for a {shape} on the table")
        taken.add(obj.id)
        scene = Scene(objects=[*scene.objects, obj.model_copy(update={"x": spot[0], "y": spot[1]})])
    looks: set[tuple[str, str, str]] = set()
    for _ in range(num_objects):
        for _ in range(100):
            shape = str(rng.choice(shapes))
            color = str(rng.choice(colors))
            size = "medium" if shape == "block" else str(rng.choice(list(SIZE_HALF)))
            if (shape, color, size) not in looks:
                break
        else:
            raise ValueError("not enough distinct looks for that many objects")
        looks.add((shape, color, size))
        obj = WorldObject(id=make_object_id(shape, color, taken), shape=shape, color=color,  # type: ignore[arg-type]
                          size=size, x=0, y=0)  # type: ignore[arg-type]
        spot = free_spot(scene, obj, rng)
        if spot is None:
            raise ValueError(f"no room for {num_objects} objects on the table")
        taken.add(obj.id)
        scene = Scene(objects=[*scene.objects, obj.model_copy(update={"x": spot[0], "y": spot[1]})])
    return scene
