"""ActWM-Sim: seeded, procedurally generated tasks on the tabletop world.

Each task has a start scene, an action in words, the ground-truth goal
predicates and a ground-truth step plan. Categories grow in horizon (number
of object motions): single pick-and-place, relational placement, swaps,
stacking, multi-object gathering, ordering by size, and long compound tasks.
The suite is a pure function of (version, split, seed): the same call always
gives the same tasks. The ground truth is for scoring only; agents get the
start image and the action text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from pydantic import BaseModel

from ..tools.world.execute import Step
from ..tools.world.scene import (
    SIZE_HALF,
    Scene,
    WorldObject,
    interpenetrating,
    object_words,
    random_scene,
)

SUITE_VERSION = "actwm-sim-v1"
SPLIT_SEEDS = {"test": 1_000_003, "train": 2_000_003}
SPLIT_SIZES = {"test": 120, "train": 240}
Category = Literal["pick_place", "relational", "swap", "stacking", "gather", "ordering", "compound"]
CATEGORIES: tuple[Category, ...] = ("pick_place", "relational", "swap", "stacking", "gather", "ordering", "compound")


class Task(BaseModel):
    id: str
    split: str
    category: Category
    horizon: int
    action: str
    scene: Scene
    goal: list[str]
    steps: list[Step]


def phrase(obj: WorldObject, scene: Scene) -> str:
    """The shortest words that pick out `obj`: colour and shape, plus size when needed."""
    if obj.is_container:
        return obj.shape
    twins = any(o.id != obj.id and o.color == obj.color and o.shape == obj.shape for o in scene.movables)
    return f"{obj.size} {obj.color} {obj.shape}" if twins else object_words(obj.shape, obj.color, obj.size, False)


class _Builder:
    """Draws one task of a category from a seeded generator, or None when the scene does not fit."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def scene(self, **kw) -> Scene:
        return random_scene(int(self.rng.integers(2**31)), **kw)

    def pick(self, pool: list[WorldObject], k: int = 1) -> list[WorldObject]:
        idx = self.rng.permutation(len(pool))[:k]
        return [pool[int(i)] for i in idx]

    def pick_place(self):
        s = self.scene(num_objects=4, containers=(str(self.rng.choice(["bowl", "plate", "box"])),))
        (a,), c = self.pick(s.movables), s.containers[0]
        return s, f"put the {phrase(a, s)} in the {c.shape}", [f"inside({a.id}, {c.id})"], [
            Step(verb="put_in", subject=a.id, target=c.id)]

    def relational(self):
        s = self.scene(num_objects=4, containers=())
        a, b = self.pick(s.movables, 2)
        side = str(self.rng.choice(["left", "right"]))
        return s, f"put the {phrase(a, s)} {side} of the {phrase(b, s)}", [f"{side}_of({a.id}, {b.id})"], [
            Step(verb="move_to", subject=a.id, target=b.id, place=f"{side}_of")]

    def swap(self):
        s = self.scene(num_objects=4, containers=())
        a, b = self.pick(s.movables, 2)
        return s, f"swap the {phrase(a, s)} and the {phrase(b, s)}", [
            f"at({a.id}, {b.x:g}, {b.y:g})", f"at({b.id}, {a.x:g}, {a.y:g})"], [
            Step(verb="swap", subject=a.id, target=b.id)]

    def stacking(self):
        s = self.scene(num_objects=5, containers=(), shapes=("cube", "block", "ball"))
        boxy = [o for o in s.movables if o.shape != "ball"]
        if len(boxy) < 2:
            return None
        base, top = self.pick(boxy, 2)
        if base.color == top.color:  # same-colour stacks merge in perception
            return None
        return s, f"stack the {phrase(top, s)} on the {phrase(base, s)}", [f"on({top.id}, {base.id})"], [
            Step(verb="stack", subject=top.id, target=base.id)]

    def gather(self):
        colors = tuple(str(c) for c in self.pick_colors(3))
        s = self.scene(num_objects=5, containers=("bowl",), colors=colors, shapes=("ball", "cube"))
        by_color: dict[str, list[WorldObject]] = {}
        for o in s.movables:
            by_color.setdefault(o.color, []).append(o)
        color, group = max(by_color.items(), key=lambda kv: (len(kv[1]), kv[0]))
        if not 2 <= len(group) <= 3:
            return None
        group = sorted(group, key=lambda o: o.x)
        return s, f"put all {color} objects in the bowl", [f"inside({o.id}, bowl)" for o in group], [
            Step(verb="put_in", subject=o.id, target="bowl") for o in group]

    def ordering(self):
        s = self.scene(num_objects=4, containers=(), shapes=("cube", "ball", "ball"))
        cubes = sorted([o for o in s.movables if o.shape == "cube"], key=lambda o: (SIZE_HALF[o.size], o.x))
        if len(cubes) < 2 or len({c.size for c in cubes}) < len(cubes):
            return None
        goal = [f"at_edge({cubes[0].id}, left)"] + [f"right_of({b.id}, {a.id})" for a, b in zip(cubes, cubes[1:])]
        steps = [Step(verb="move_to", subject=cubes[0].id, place="left")] + [
            Step(verb="move_to", subject=b.id, target=a.id, place="right_of") for a, b in zip(cubes, cubes[1:])]
        return s, "line the cubes up from left to right by size", goal, steps

    def compound(self):
        s = self.scene(num_objects=6, containers=("bowl",))
        movables = self.pick(s.movables, len(s.movables))
        n_in = int(self.rng.integers(1, 4))
        clauses, goal, steps = [], [], []
        into, rest = movables[:n_in], movables[n_in:]
        for o in into:
            clauses.append(f"put the {phrase(o, s)} in the bowl")
            goal.append(f"inside({o.id}, bowl)")
            steps.append(Step(verb="put_in", subject=o.id, target="bowl"))
        sides = ["left", "right", "front", "back"]
        for o in rest[: int(self.rng.integers(1, 5))]:
            side = sides.pop(int(self.rng.integers(len(sides))))
            clauses.append(f"move the {phrase(o, s)} to the {side} edge")
            goal.append(f"at_edge({o.id}, {side})")
            steps.append(Step(verb="move_to", subject=o.id, place=side))
        if len(steps) < 2:
            return None
        return s, ", then ".join(clauses), goal, steps

    def pick_colors(self, k: int) -> list[str]:
        from ..tools.world.scene import OBJECT_COLORS

        return list(self.rng.choice(list(OBJECT_COLORS), size=k, replace=False))


def _solvable(scene: Scene, goal: list[str], steps: list[Step]) -> bool:
    """The ground-truth steps, executed by the world without errors, reach the goal with
    nothing interpenetrating (a container too full to take one more object does not count)."""
    from ..tools.predicates import Predicate, evaluate
    from ..tools.world.execute import apply_moves, step_moves

    rng = np.random.default_rng(0)
    end = scene
    try:
        for step in steps:
            end = apply_moves(end, step_moves(end, step, rng))
    except ValueError:
        return False
    objects = {o.id: o for o in end.objects}
    return all(evaluate(Predicate.parse(g), objects) for g in goal) and not interpenetrating(end)  # type: ignore[arg-type]


def _draw(builder: _Builder, category: Category):
    make: Callable = getattr(builder, category)
    for _ in range(50):
        try:
            made = make()
        except ValueError:  # a crowded layout: draw again
            continue
        if made is not None and _solvable(*made[:1], made[2], made[3]):
            return made
    raise RuntimeError(f"could not draw a {category} task")


def build_suite(split: str = "test", size: int | None = None, seed: int | None = None) -> list[Task]:
    """The ActWM-Sim tasks of a split: categories in turn, each drawn from the split's seed."""
    if split not in SPLIT_SEEDS:
        from ..tools.errors import InputError

        raise InputError(f"unknown split {split!r}; choose one of: {', '.join(SPLIT_SEEDS)}")
    rng = np.random.default_rng(SPLIT_SEEDS[split] if seed is None else seed)
    builder = _Builder(rng)
    tasks = []
    for i in range(size if size is not None else SPLIT_SIZES[split]):
        category = CATEGORIES[i % len(CATEGORIES)]
        scene, action, goal, steps = _draw(builder, category)
        tasks.append(Task(id=f"{split}-{i:04d}", split=split, category=category, horizon=len(steps),
                          action=action, scene=scene, goal=goal, steps=steps))
    return tasks
