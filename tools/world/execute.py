"""Ground-truth execution: carry out object-centric steps in the world, with no errors.

`goal_position` is the world's meaning of each verb (where an object ends up);
the simulated video model uses it for the motions it decides to render, and
`execute` uses it to render the error-free reference videos of the dataset.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel

from .motion import Move, animate, render_segment
from .places import beside, container_slot, named_place
from .scene import Scene, WorldObject

StepVerb = Literal["put_in", "stack", "move_to", "swap"]


class Step(BaseModel):
    """One object-centric step: `subject` does `verb` to `target` (an object id) or `place`."""

    verb: StepVerb
    subject: str
    target: str | None = None
    place: str | None = None
    """left / right / front / back / center, or left_of / right_of with `target`."""


def goal_position(scene: Scene, actor: WorldObject, verb: str, target: WorldObject | None,
                  place: str | None, rng: np.random.Generator) -> tuple[float, float, float] | None:
    """Where `actor` rests after the step, or None when the step makes no sense here."""
    if verb == "put_in":
        if target is None or not target.is_container:
            return None
        return (*container_slot(scene, actor, target, rng), 0.0)
    if verb == "stack":
        if target is None or target.is_container or target.id == actor.id:
            return None
        return target.x, target.y, target.z + target.height
    if verb == "swap":
        return (target.x, target.y, 0.0) if target is not None and target.id != actor.id else None
    if place in ("left_of", "right_of"):
        return (*beside(scene, actor, target, place), 0.0) if target is not None else None
    if place:
        return (*named_place(scene, actor, place), 0.0)
    return None


def step_moves(scene: Scene, step: Step, rng: np.random.Generator) -> list[Move]:
    actor = scene.get(step.subject)
    target = scene.get(step.target) if step.target else None
    goal = goal_position(scene, actor, step.verb, target, step.place, rng)
    if goal is None:
        raise ValueError(f"cannot {step.verb} {step.subject} → {step.target or step.place}")
    x, y, z = goal
    moves = [Move(object_id=actor.id, x=x, y=y, z=z, lift_height=16.0 + z)]
    if step.verb == "swap" and target is not None:
        moves.append(Move(object_id=target.id, x=actor.x, y=actor.y, lift_height=28.0))
    return moves


def apply_moves(scene: Scene, moves: list[Move]) -> Scene:
    """The scene once the moves have finished."""
    return animate(scene, list(moves), 2)[-1]


def execute(scene: Scene, steps: list[Step], *, num_frames: int = 16, height: int = 128, width: int = 128,
            seed: int = 0) -> tuple[list[np.ndarray], Scene]:
    """Render each step as one error-free segment; returns the segments and the end scene."""
    rng = np.random.default_rng(seed)
    segments = []
    for step in steps:
        moves = step_moves(scene, step, rng)
        segments.append(render_segment(animate(scene, list(moves), num_frames), height, width))
        scene = apply_moves(scene, moves)
    return segments, scene
