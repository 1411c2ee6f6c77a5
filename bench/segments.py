"""Training segments for `tabletop-tiny`: single sub-actions of train-split tasks, rendered without errors.

Each task of the train split (and as many further draws from the train split's
generator as wanted: the world makes unlimited data) is executed step by step
by the ground-truth executor; each step becomes one example: the frame before
it, the instruction the planner would write for it (with the refiner's
phrases added at random, so the model has seen every wording the loop sends),
and the error-free segment. The test split's generator is never drawn from.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..nodes.planner import PLACE_WORDS
from ..nodes.prompts.generator import write_instruction
from ..tools.perception import perceive
from ..tools.video.base import GoalMove
from ..tools.world.execute import Step, apply_moves, step_moves
from ..tools.world.motion import Move, animate, render_segment
from ..tools.world.render import ELEVATION
from ..tools.world.scene import TABLE_SIZE, Scene, name_among
from .tasks import SPLIT_SEEDS, build_suite

FLAG_SETS = ((), ("explicit",), ("explicit", "complete"), ("identity",), ("still",), ("explicit", "complete", "still"),
             ("identity", "still"))
"""Refinement phrases an instruction may carry (nodes/refine.py adds them); plain wording half the time."""


class SegmentExample(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    frames: np.ndarray
    """uint8 (T, H, W, 3); frames[0] is the conditioning frame."""
    prompt: str
    task_id: str
    after: Scene
    """The world at the segment's end: the reference a held-out sample is judged against (bench/judge.py)."""
    before: Scene
    """The world at the segment's start."""
    step: Step
    """What the instruction asks, in the world's object ids."""
    goal: list[GoalMove]
    """Hindsight goals: each mover's box in the first frame and where the executor put it (pixels); what a
    goal-taking model learns from, and what the planner's goal (nodes/goal.py) estimates at run time."""


def hindsight_goal(scene: Scene, moves: list[Move], first: np.ndarray) -> list[GoalMove]:
    """Each mover's box as perception finds it in `first` (the nearest object of its colour and shape) and the
    point the executor's move takes its box's centre to."""
    seen = perceive(first)
    sx, sy = first.shape[1] / TABLE_SIZE, first.shape[0] / TABLE_SIZE
    goal = []
    for move in moves:
        obj = scene.get(move.object_id)
        looks = [p for p in seen if (p.shape, p.color) == (obj.shape, obj.color)] or \
            [p for p in seen if p.color == obj.color]
        if not looks:
            continue
        found = min(looks, key=lambda p: np.hypot(p.x - obj.x, p.y - obj.y))
        goal.append(GoalMove(box=found.bbox, to=(move.x * sx, (move.y - ELEVATION * move.z) * sy)))
    return goal


def instruction_for(scene: Scene, step: Step, flags: tuple[str, ...]) -> str:
    """The generator instruction the planner writes for `step` in `scene` (nodes/planner.py's wording)."""
    subject = scene.get(step.subject)
    subj = name_among(subject, scene.objects)
    other = scene.get(step.target) if step.target else None
    other_desc = name_among(other, scene.objects) if other is not None else ""
    if step.verb == "swap":
        return write_instruction("swap", subj, "", other_desc, flags)
    if step.verb in ("put_in", "stack"):
        return write_instruction(step.verb, subj, other_desc, "", flags)
    if step.place in ("left_of", "right_of"):
        return write_instruction(step.place, subj, other_desc, "", flags)
    return write_instruction("move_to", subj, PLACE_WORDS[step.place or "center"], "", flags)


def train_segments(count: int, *, num_frames: int = 9, side: int = 128, seed: int = 0,
                   start: int = 0) -> Iterator[SegmentExample]:
    """`count` examples from the train split, then from further draws of its generator (seed + k); with
    `start`, the stream's examples from there (the ones before are drawn, not rendered)."""
    rng = np.random.default_rng(seed)
    made, draw = 0, 0
    while made < count:
        tasks = build_suite("train", seed=None if draw == 0 else SPLIT_SEEDS["train"] + 7919 * draw + seed)
        draw += 1
        for task in tasks:
            scene = task.scene
            for step in task.steps:
                moves = step_moves(scene, step, rng)
                flags = FLAG_SETS[0] if rng.random() < 0.5 else FLAG_SETS[int(rng.integers(1, len(FLAG_SETS)))]
                after = apply_moves(scene, moves)
                if made >= start:
                    frames = render_segment(animate(scene, list(moves), num_frames), side, side)
                    yield SegmentExample(frames=frames, prompt=instruction_for(scene, step, flags), task_id=task.id,
                                         before=scene, after=after, step=step, goal=hindsight_goal(scene, moves, frames[0]))
                scene = after
                made += 1
                if made >= count:
                    return
