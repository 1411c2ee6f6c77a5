"""The independent judge for a learned model: a generated frame against the world's own reference.

A learned generator has no ground-truth record of what it made (the `sim`
backbone does), and the critic's verdict cannot score itself. So the world's
ground-truth executor renders what the correct end state looks like, and the
generated frame is compared with that reference: objects and positions are
recovered from both images the same way (perception of pixels), each
reference object must be found in the generated frame by its look (shape,
colour, size), where the reference has it (inside the same container, for an
object put in one; within `POSITION_TOLERANCE` otherwise), with no object
the reference lacks; a pixel metric (mean absolute error, PSNR) is reported
beside it. Nothing here reads the critic.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pydantic import BaseModel

from ..nodes.goal import world_step
from ..tools.perception import PerceivedObject, match_objects
from ..tools.predicates import Predicate, evaluate
from ..tools.soft_perception import perceive_soft
from ..tools.world.execute import Step, apply_moves, step_moves
from ..tools.world.render import render_scene
from ..tools.world.scene import Scene, WorldObject
from ..vocabulary.state import Ledger, SubAction

Reader = Callable[[np.ndarray], list[PerceivedObject]]
"""Objects from a frame's pixels."""
POSITION_TOLERANCE = 6.0
"""Table units (pixels at 128x128) an object may sit from its reference position: about half a small ball."""
EXTRA_MIN_PIXELS = 40
"""A region the reference lacks counts as an extra object from this many pixels (at 128x128; half a small
ball): smaller ones are blur and noise, not a hallucinated object."""


class Judgement(BaseModel):
    success: bool
    missing: list[str]
    """Reference objects not found in the generated frame (by look)."""
    misplaced: list[str]
    """Found, but not where the reference has them."""
    extra: int
    """Objects in the generated frame that the reference does not have."""
    max_error: float
    """Largest distance of a found object from its reference position (table units)."""
    pixel_mae: float
    """Mean absolute difference from the reference frame, in levels (0-255)."""
    psnr: float


def _look(o: WorldObject | PerceivedObject) -> tuple[str, str, str]:
    return (o.shape, o.color, "" if o.is_container else o.size)


def _container_of(oid: str, objects: dict[str, PerceivedObject]) -> str | None:
    for cid, c in objects.items():
        if c.is_container and cid != oid and _inside(objects[oid], c):
            return cid
    return None


def judge_frame(reference: Scene, generated: np.ndarray, read: Reader = perceive_soft) -> Judgement:
    """Does `generated` (uint8 H, W, 3) show the world as `reference` has it?

    Objects inside a container overlap and hide each other's outlines (in the reference too), so there
    each reference object needs one of its colour inside the same container (or, where two of one colour
    touch and read as one region, as much of that colour there as the reference has, within 40 %); elsewhere an object needs
    its full look within `POSITION_TOLERANCE` of the reference position. Both frames are read with `read`: outlines at
    half of each edge (tools/soft_perception.py), so a soft frame is read at its objects' true sizes and shapes;
    `perception.perceive` gives the judge as it was before it read soft frames (bench/judge_robustness.py)."""
    height, width = generated.shape[:2]
    ref_frame = render_scene(reference, height, width)
    ref = {o.id: o for o in read(ref_frame)}
    seen = {f"g{i}": o for i, o in enumerate(read(generated))}
    containers = match_objects({oid: (*_look(o), o.x, o.y) for oid, o in ref.items() if o.is_container},
                               [o for o in seen.values() if o.is_container], max_distance=float("inf"))
    gen_ids = {id(o): gid for gid, o in seen.items()}
    held = {cid: [gid for gid, o in seen.items() if not o.is_container and _inside(o, c)] for cid, c in containers.items()}
    inside_any = {g for gids in held.values() for g in gids}
    free_ref = {oid: o for oid, o in ref.items() if not o.is_container and _container_of(oid, ref) is None}
    found = match_objects({oid: (*_look(o), o.x, o.y) for oid, o in free_ref.items()},
                          [o for gid, o in seen.items() if not o.is_container and gid not in inside_any],
                          max_distance=float("inf"))
    missing, misplaced, errors = [], [], []
    for oid, want in free_ref.items():
        got = found.get(oid)
        if got is None:
            missing.append(oid)
            continue
        errors.append(float(np.hypot(got.x - want.x, got.y - want.y)))
        if errors[-1] > POSITION_TOLERANCE:
            misplaced.append(oid)
    wanted: dict[tuple[str, str], list[str]] = {}
    for oid, want in ref.items():
        cid = None if want.is_container else _container_of(oid, ref)
        if cid is not None:
            wanted.setdefault((cid, want.color), []).append(oid)
    for (cid, color), oids in wanted.items():
        there = [seen[g] for g in held.get(cid, []) if seen[g].color == color]
        # two touching objects of one colour read as one region: their area still counts
        area_ok = there and sum(o.pixels for o in there) >= 0.6 * sum(ref[o].pixels for o in oids)
        if len(there) < len(oids) and not area_ok:
            missing += [f"{oid} (in the {cid})" for oid in oids[len(there):]]
    missing += [oid for oid, o in ref.items() if o.is_container and oid not in containers]
    used = {gen_ids[id(o)] for o in found.values()} | inside_any | {gen_ids[id(o)] for o in containers.values()}
    scale = (height * width) / (128 * 128)
    extra = sum(1 for gid in set(seen) - used if seen[gid].pixels >= EXTRA_MIN_PIXELS * scale)
    diff = np.abs(generated.astype(np.float32) - ref_frame.astype(np.float32))
    mse = float(np.mean(diff**2))
    return Judgement(success=not missing and not misplaced and extra == 0, missing=sorted(missing),
                     misplaced=sorted(misplaced), extra=extra, max_error=round(max(errors, default=0.0), 2),
                     pixel_mae=round(float(diff.mean()), 3), psnr=round(10 * np.log10(255.0**2 / max(mse, 1e-9)), 2))


def _inside(obj: PerceivedObject, container: PerceivedObject) -> bool:
    return evaluate(Predicate(name="inside", args=["a", "c"]), {"a": obj, "c": container})  # type: ignore[dict-item]


def reference_after(scene: Scene, steps: list[Step], seed: int = 0) -> Scene:
    """The world once the ground-truth executor has carried out `steps` without errors."""
    rng = np.random.default_rng(seed)
    for step in steps:
        scene = apply_moves(scene, step_moves(scene, step, rng))
    return scene


def scene_in_frame(truth: Scene, frame: np.ndarray) -> Scene:
    """`truth`'s objects where perception finds them in `frame` (by look); unseen ones stay put. The
    start of a later segment is the generated frame it continues, not the ideal world."""
    by_look = {_look(o): o for o in perceive_soft(frame)}
    moved = []
    for obj in truth.objects:
        seen = by_look.get(_look(obj))
        moved.append(obj if seen is None else obj.model_copy(update={"x": seen.x, "y": seen.y, "z": seen.z}))
    return truth.model_copy(update={"objects": moved})


def ledger_looks(ledger: Ledger) -> dict[str, tuple[str, str, str]]:
    """The plan's object ids -> their look (shape, colour, size; no size for a container), from an episode's
    ledger: how `step_of` finds the world's object a sub-action names."""
    return {oid: (r.shape, r.color, "" if r.shape in ("bowl", "plate", "box") else r.size)
            for oid, r in ledger.objects.items()}


def step_of(sub: SubAction, looks: dict[str, tuple[str, str, str]], truth: Scene) -> Step | None:
    """The executor's step for a planned sub-action: the plan's object ids (named by perception) mapped to
    the world's by look (`looks`: the plan's id -> look, from the episode's ledger). None when a named
    object is not in the world."""
    ids = {_look(o): o.id for o in truth.objects}
    return world_step(sub, lambda oid: ids.get(looks[oid]) if oid in looks else None)


def judge_segment(truth: Scene, sub: SubAction, looks: dict[str, tuple[str, str, str]], conditioning: np.ndarray,
                  last_frame: np.ndarray, seed: int = 0) -> Judgement | None:
    """One attempt: the sub-action carried out by the executor from where the segment started, against
    the segment's last frame. None when the step cannot be carried out from there."""
    start = scene_in_frame(truth, conditioning)
    step = step_of(sub, looks, start)
    if step is None:
        return None
    try:
        reference = reference_after(start, [step], seed)
    except ValueError:
        return None
    return judge_frame(reference, last_frame)
