"""Where a sub-action's movers should end, read from the conditioning frame: the planner's goal for a
backbone that takes one (`SegmentRequest.goal`).

The planner knows what each verb means in the tabletop world (docs/actions.md): into a container, on top of
another object, to an edge or the centre, beside another object, or swapped. Here that meaning is applied to
what the conditioning frame shows: the ledger's objects as perception finds them there, placed by the
world's geometry (`tools/world/places.py`, the same rules the simulated video model applies to what it
perceives). Nothing here reads the world's ground truth; a goal is only as right as perception of the frame.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from ..tools.perception import PerceivedObject, as_world, perceive
from ..tools.video.base import GoalMove
from ..tools.world.execute import Step, step_moves
from ..tools.world.render import ELEVATION
from ..tools.world.scene import TABLE_SIZE, Scene
from ..vocabulary.state import Ledger, SubAction
from .ledger import seen_in


def world_step(sub: SubAction, world_id: Callable[[str | None], str | None]) -> Step | None:
    """The world's step for a planned sub-action, its object ids mapped by `world_id` (None for an object that
    is not there): None when a named object is missing."""
    subject = world_id(sub.subject)
    if subject is None:
        return None
    if sub.verb == "swap":
        partner = world_id(sub.partner)
        return Step(verb="swap", subject=subject, target=partner) if partner else None
    if sub.verb in ("put_in", "stack"):
        target = world_id(sub.target)
        return Step(verb=sub.verb, subject=subject, target=target) if target else None
    post = sub.postconditions[0] if sub.postconditions else ""
    for rel in ("left_of", "right_of"):
        if post.startswith(rel):
            target = world_id(sub.target)
            return Step(verb="move_to", subject=subject, target=target, place=rel) if target else None
    return Step(verb="move_to", subject=subject, place=sub.target)


def goal_for(sub: SubAction, frame: np.ndarray, ledger: Ledger,
             read: Callable[[np.ndarray], list[PerceivedObject]] = perceive) -> list[GoalMove]:
    """Each mover's box in `frame` and where its box's centre should end (pixels of `frame`); empty when the
    frame does not show what the sub-action names or the world has no place for it. `read`: the run's
    reading of frames (a later segment starts from a learned frame)."""
    seen = seen_in(ledger, frame, read)
    scene = Scene(objects=[as_world(obj).model_copy(update={"id": oid}) for oid, obj in seen.items()])
    step = world_step(sub, lambda oid: oid if oid in seen else None)
    if step is None:
        return []
    rng = np.random.default_rng(zlib.crc32(sub.id.encode() or b"goal"))  # a container's free spot, reproducibly
    try:
        moves = step_moves(scene, step, rng)
    except ValueError:
        return []
    height, width = frame.shape[:2]
    sx, sy = width / TABLE_SIZE, height / TABLE_SIZE
    goal = []
    for move in moves:
        r0, c0, r1, c1 = seen[move.object_id].bbox
        to = (min(max(move.x * sx, 0.0), width - 1.0), min(max((move.y - ELEVATION * move.z) * sy, 0.0), height - 1.0))
        goal.append(GoalMove(box=(r0, c0, r1, c1), to=to))
    return goal
