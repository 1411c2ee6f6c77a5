"""Start scenes a person asks for by name: "red ball, large blue cube, bowl".

Each item is an optional size, an optional colour and a shape, in the words
the planner's grammar reads back (a container's colour is its own: "bowl" or
"white bowl"). Objects are placed at seeded free spots, containers first, so
the same words and seed give the same picture.
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import InputError
from .scene import (
    CONTAINER_COLOR_NAMES,
    CONTAINER_SHAPES,
    MOVABLE_SHAPES,
    OBJECT_COLORS,
    SIZE_HALF,
    Scene,
    WorldObject,
    canonical_ids,
    free_spot,
    make_object_id,
    object_words,
)

_ARTICLES = {"a", "an", "the", "one"}


def _item(words: list[str], text: str) -> tuple[str, str, str]:
    """(shape, colour, size) of one listed object; an unknown word is named."""
    size = color = shape = ""
    for word in words:
        singular = word[:-1] if word.endswith("s") and word[:-1] in (*MOVABLE_SHAPES, *CONTAINER_SHAPES) else word
        if word in _ARTICLES:
            continue
        if word in SIZE_HALF and not size:
            size = word
        elif (word in OBJECT_COLORS or word in CONTAINER_COLOR_NAMES.values()) and not color:
            color = word
        elif singular in (*MOVABLE_SHAPES, *CONTAINER_SHAPES) and not shape:
            shape = singular
        else:
            raise InputError(f"--objects: {word!r} in {text!r} is not understood; an object is [size] [colour] "
                             f"shape, sizes {'/'.join(SIZE_HALF)}, colours {'/'.join(OBJECT_COLORS)}, "
                             f"shapes {'/'.join((*MOVABLE_SHAPES, *CONTAINER_SHAPES))}")
    if not shape:
        raise InputError(f"--objects: {text!r} names no shape ({'/'.join((*MOVABLE_SHAPES, *CONTAINER_SHAPES))})")
    if shape in CONTAINER_SHAPES:
        if color and color != CONTAINER_COLOR_NAMES[shape]:
            raise InputError(f"--objects: a {shape} is always {CONTAINER_COLOR_NAMES[shape]} in the tabletop world, "
                             f"not {color}")
        if size:
            raise InputError(f"--objects: containers come in one size; drop {size!r} from {text!r}")
        return shape, CONTAINER_COLOR_NAMES[shape], "medium"
    if color not in OBJECT_COLORS:
        raise InputError(f"--objects: {text!r} needs a colour ({'/'.join(OBJECT_COLORS)})")
    if shape == "block" and size not in ("", "medium"):
        raise InputError(f"--objects: blocks come in one size; drop {size!r} from {text!r}")
    return shape, color, size or "medium"


def scene_from_words(text: str, seed: int = 0) -> Scene:
    """The scene a comma-separated object list describes, laid out from `seed`.

    Raises InputError naming the word it does not understand, two objects that
    would look the same (no words could tell them apart), or a table too full.
    """
    items = [part.strip().lower() for part in re.split(r",|\band\b", text) if part.strip()]
    if not items:
        raise InputError("--objects: list at least one object, e.g. 'red ball, blue cube, bowl'")
    looks = [_item(item.split(), item) for item in items]
    seen: set[tuple[str, str, str]] = set()
    for look in looks:
        if look in seen:
            raise InputError(f"--objects: two {object_words(look[0], look[1], look[2])}s would look the same, so "
                             "no action could say which one; give them different sizes (small/medium/large)")
        seen.add(look)
    rng = np.random.default_rng(seed)
    ordered = sorted(looks, key=lambda look: look[0] not in CONTAINER_SHAPES)
    for _ in range(LAYOUT_TRIES):  # a layout that boxed itself in is retried with the same generator
        scene = _layout(ordered, rng)
        if isinstance(scene, Scene):
            return canonical_ids(scene)
    raise InputError(f"--objects: no room on the table for the {scene} after {LAYOUT_TRIES} layouts; list fewer or "
                     "smaller objects")


LAYOUT_TRIES = 20


def _layout(looks: list[tuple[str, str, str]], rng: np.random.Generator) -> Scene | str:
    """The objects at free spots, or the words for the first one that found no room."""
    scene = Scene()
    taken: set[str] = set()
    for shape, color, size in looks:
        obj = WorldObject(id=make_object_id(shape, "" if shape in CONTAINER_SHAPES else color, taken),
                          shape=shape, color=color, size=size, x=0, y=0)  # type: ignore[arg-type]
        spot = free_spot(scene, obj, rng, margin=4 if obj.is_container else 6)
        if spot is None:
            return object_words(shape, color, size)
        taken.add(obj.id)
        scene = Scene(objects=[*scene.objects, obj.model_copy(update={"x": spot[0], "y": spot[1]})])
    return scene
