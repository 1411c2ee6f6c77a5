"""The `sim` backbone: a SIMULATOR of a text+image-to-video model.

It sees exactly what a real TI2V model sees — the conditioning frame's pixels,
the prompt text, the seed and the sizes — and renders a segment of the
procedural tabletop world. It recovers the scene from the pixels (through the
same perception the agents use), reads the prompt (`language.py`), and then
samples the failures of its documented error model (`config.py`).

What really happened (which object moved, which errors were drawn) is kept in
`SimTruth`, returned only by `generate_with_truth`: for the benchmark's scoring
and for tests. Planner and critic never see it.
"""

from __future__ import annotations

import time
import zlib
from functools import lru_cache
from typing import Literal

import numpy as np
from pydantic import BaseModel

from ...perception import as_world, perceive
from ...world.execute import goal_position
from ...world.motion import Change, Move, Recolor, animate, render_segment
from ...world.places import nearest_free
from ...world.render import render_scene
from ...world.scene import SIZE_HALF, Scene, WorldObject
from ..base import ProgressFn, Segment, SegmentRequest
from .config import SimConfig, preset
from .language import Intent, ObjectRef, Reading, read_prompt

ErrorKind = Literal["incomplete", "wrong_object", "dropped", "unresolved", "ambiguous"]


class ActionOutcome(BaseModel):
    """One object motion the prompt asked for, and what the model made of it."""

    verb: str
    intended: str | None
    moved: str | None
    errors: list[ErrorKind] = []
    progress: float = 1.0
    p_incomplete: float = 0.0
    p_wrong_object: float = 0.0
    p_drop: float = 0.0


class DriftEvent(BaseModel):
    object_id: str
    kind: Literal["creep", "color"]
    amount: float


class SimTruth(BaseModel):
    """Ground truth of one simulated call (bench and tests only)."""

    prompt: str
    seed: int
    reading: Reading
    start: Scene
    end: Scene
    actions: list[ActionOutcome]
    drift: list[DriftEvent]
    p_drift: float


@lru_cache(maxsize=64)
def _reference_rgb(shape: str, color: str, size: str) -> np.ndarray:
    """Mean colour of an untinted object as perceived, to read tints back."""
    obj = WorldObject(id="probe", shape=shape, color=color, size=size, x=64, y=64)  # type: ignore[arg-type]
    seen = perceive(render_scene(Scene(objects=[obj])))
    return np.asarray(seen[0].mean_rgb) if seen else np.ones(3)


def scene_from_frame(frame: np.ndarray) -> Scene:
    """The tabletop scene a frame shows, as the simulated model reconstructs it."""
    objects = []
    for p in perceive(frame):
        tint = (1.0, 1.0, 1.0)
        if not p.occluded and not p.is_container:
            ratio = np.asarray(p.mean_rgb) / np.maximum(_reference_rgb(p.shape, p.color, p.size), 1.0)
            if np.max(np.abs(ratio - 1.0)) > 0.04:
                tint = tuple(float(v) for v in np.round(ratio, 3))
        objects.append(as_world(p, tint))
    return Scene(objects=objects)


def _matches(ref: ObjectRef, pool: list[WorldObject]) -> list[WorldObject]:
    for relax in ((), ("size",), ("size", "color"), ("size", "color", "shape")):
        found = [o for o in pool
                 if ("color" in relax or ref.color is None or o.color == ref.color)
                 and ("shape" in relax or ref.shape is None or o.shape == ref.shape)
                 and ("size" in relax or ref.size is None or o.size == ref.size)]
        if found:
            return found
        if ref.group:
            return []
    return []


class SimVideoGenerator:
    """SIMULATOR of a TI2V video model on the tabletop world (see module docstring)."""

    name = "sim"

    def __init__(self, difficulty: str = "medium", config: SimConfig | None = None) -> None:
        self.config = config or preset(difficulty)
        self.difficulty = difficulty

    def generate(self, request: SegmentRequest, progress: ProgressFn | None = None) -> Segment:
        """The sim has no denoising loop: it renders the segment in one go and reports one step."""
        segment = self.generate_with_truth(request)[0]
        if progress is not None:
            progress(1, 1)
        return segment

    def generate_with_truth(self, request: SegmentRequest) -> tuple[Segment, SimTruth]:
        t0 = time.perf_counter()
        frame = request.conditioning_frame()
        start = scene_from_frame(frame)
        reading = read_prompt(request.prompt)
        rng = np.random.default_rng([request.seed & 0xFFFFFFFF, zlib.crc32(request.prompt.encode())])
        changes, actions, end = self._plan_motion(start, reading, rng)
        p_drift = self._rate(self.config.p_drift, len(actions))
        if reading.keep_still:
            p_drift *= self.config.still_relief
        drift, drift_changes = self._drift(end, actions, p_drift, rng)
        changes += drift_changes
        scenes = animate(start, changes, request.num_frames)
        frames = render_segment(scenes, request.height, request.width)
        truth = SimTruth(prompt=request.prompt, seed=request.seed, reading=reading, start=start,
                         end=scenes[-1], actions=actions, drift=drift, p_drift=p_drift)
        segment = Segment(frames=frames, fps=self.config.fps, seed=request.seed, backbone=self.name,
                          timings={"generate_s": time.perf_counter() - t0})
        return segment, truth

    # -- the error model -------------------------------------------------
    def _rate(self, base: float, num_actions: int) -> float:
        scaled = base * (1.0 + self.config.compound * max(num_actions - 1, 0))
        return float(min(scaled, self.config.max_probability))

    def _expand(self, scene: Scene, intent: Intent, rng: np.random.Generator):
        """Concrete (verb, subject, goal-ref, ambiguous) motions for one intent."""
        movables = scene.movables
        if intent.verb == "lineup":
            group = sorted(_matches(intent.subject, movables), key=lambda o: (SIZE_HALF.get(o.size, 7), o.x))
            return [("lineup", o, group[i - 1] if i else None, False) for i, o in enumerate(group)]
        subjects = _matches(intent.subject, movables)
        if not subjects:
            return [(intent.verb, None, None, False)]
        if intent.subject.group and intent.verb == "put_in":
            return [("put_in", o, None, False) for o in sorted(subjects, key=lambda o: o.x)]
        pick = subjects[int(rng.integers(len(subjects)))]
        return [(intent.verb, pick, None, len(subjects) > 1)]

    def _plan_motion(self, start: Scene, reading: Reading, rng: np.random.Generator):
        expanded = [(intent, m) for intent in reading.intents for m in self._expand(start, intent, rng)]
        k = len(expanded)
        cfg = self.config
        working = start
        changes: list[Change] = []
        actions: list[ActionOutcome] = []
        planned = {m[1].id for _, m in expanded if m[1] is not None}
        for j, (intent, (verb, subject, previous, ambiguous)) in enumerate(expanded):
            u_drop, u_wrong, u_inc, u_prog = rng.random(4)
            p_drop = min(cfg.p_drop * j, cfg.max_probability)
            p_inc = self._rate(cfg.p_incomplete, k) * (cfg.completion_relief if intent.completion else 1.0)
            p_wrong = self._rate(cfg.p_wrong_object, k) * (cfg.specific_relief if intent.subject.specific else 1.0)
            outcome = ActionOutcome(verb=verb, intended=subject.id if subject else None, moved=None,
                                    p_incomplete=p_inc, p_wrong_object=p_wrong, p_drop=p_drop)
            actions.append(outcome)
            if ambiguous:
                outcome.errors.append("ambiguous")
            if subject is None:
                outcome.errors.append("unresolved")
                continue
            if u_drop < p_drop:
                outcome.errors.append("dropped")
                continue
            actor = working.get(subject.id)
            if u_wrong < p_wrong:
                wrong = self._confusable(working, actor, intent, planned, rng)
                if wrong is not None:
                    actor = wrong
                    outcome.errors.append("wrong_object")
            goal = self._goal(working, actor, intent, verb, previous, rng)
            if goal is None:
                outcome.errors.append("unresolved")
                continue
            x, y, z = goal
            progress = 1.0
            if u_inc < p_inc:
                lo, hi = cfg.incomplete_progress
                progress = float(lo + (hi - lo) * u_prog)
                # set down part way, on free table (models rarely interpenetrate objects)
                fx, fy = nearest_free(working, actor, actor.x + (x - actor.x) * progress,
                                      actor.y + (y - actor.y) * progress)
                x, y, z, outcome.progress, progress = fx, fy, 0.0, progress, 1.0
                outcome.errors.append("incomplete")
            outcome.moved = actor.id
            window = (j / k, (j + 1) / k)
            moves = [Move(object_id=actor.id, x=x, y=y, z=z, style=intent.style, progress=progress,
                          lift_height=16.0 + z, start=window[0], end=window[1])]
            if verb == "swap" and intent.other is not None:
                partner = self._partner(working, actor, intent)
                if partner is not None:
                    moves.append(Move(object_id=partner.id, x=actor.x, y=actor.y, lift_height=28.0,
                                      progress=progress, start=window[0], end=window[1]))
            for move in moves:
                changes.append(move)
                obj = working.get(move.object_id)
                sx, sy = obj.x + (move.x - obj.x) * progress, obj.y + (move.y - obj.y) * progress
                working = working.replace(obj.model_copy(update={
                    "x": float(round(sx)), "y": float(round(sy)), "z": move.z if progress >= 1 else 0.0}))
        return changes, actions, working

    def _confusable(self, scene: Scene, actor: WorldObject, intent: Intent, planned: set[str],
                    rng: np.random.Generator) -> WorldObject | None:
        """A look-alike that the prompt did not ask to move."""
        others = [o for o in scene.movables if o.id != actor.id and o.id not in planned]
        if intent.other is not None:
            others = [o for o in others if not (o.color == intent.other.color and o.shape == intent.other.shape)]
        similar = [o for o in others if o.color == actor.color or o.shape == actor.shape]
        pool = similar or others
        return pool[int(rng.integers(len(pool)))] if pool else None

    def _partner(self, scene: Scene, actor: WorldObject, intent: Intent) -> WorldObject | None:
        assert intent.other is not None
        found = [o for o in _matches(intent.other, scene.movables) if o.id != actor.id]
        return found[0] if found else None

    def _goal(self, scene: Scene, actor: WorldObject, intent: Intent, verb: str,
              previous: WorldObject | None, rng: np.random.Generator):
        """Where the model sends `actor`, in the world's own meaning of the verb."""
        if verb == "lineup":
            if previous is None:
                return goal_position(scene, actor, "move_to", None, "left", rng)
            return goal_position(scene, actor, "move_to", scene.get(previous.id), "right_of", rng)
        target = None
        if verb == "put_in":
            pool = (_matches(intent.other, scene.containers) if intent.other else []) or scene.containers
            target = pool[0] if pool else None
        elif intent.other is not None:
            pool = scene.objects if verb == "move_to" else scene.movables
            found = [o for o in _matches(intent.other, pool) if o.id != actor.id]
            target = found[0] if found else None
            if target is None:
                return None
        return goal_position(scene, actor, verb, target, intent.place, rng)

    def _drift(self, scene: Scene, actions: list[ActionOutcome], p_drift: float,
               rng: np.random.Generator) -> tuple[list[DriftEvent], list[Change]]:
        u, count, kinds = rng.random(), int(rng.integers(1, 3)), rng.random(2)
        if u >= p_drift:
            return [], []
        involved = {a.moved for a in actions} | {a.intended for a in actions}
        bystanders = [o for o in scene.movables if o.id not in involved and o.z == 0]
        if not bystanders:
            return [], []
        chosen = rng.permutation(len(bystanders))[:count]
        events, changes = [], []
        for i, idx in enumerate(chosen):
            obj = bystanders[int(idx)]
            if kinds[i] < 0.7:
                lo, hi = self.config.drift_pixels
                dist, angle = lo + (hi - lo) * rng.random(), 2 * np.pi * rng.random()
                x, y = nearest_free(scene, obj, obj.x + dist * np.cos(angle), obj.y + dist * np.sin(angle))
                dist = float(np.hypot(x - obj.x, y - obj.y))
                changes.append(Move(object_id=obj.id, x=x, y=y, style="slide"))
                events.append(DriftEvent(object_id=obj.id, kind="creep", amount=float(dist)))
            else:
                lo, hi = self.config.drift_tint
                a = lo + (hi - lo) * rng.random()
                tint = np.asarray(obj.tint) * np.roll(np.array([1 + a, 1 - a, 1.0]), int(rng.integers(3)))
                changes.append(Recolor(object_id=obj.id, tint=tuple(float(v) for v in tint)))
                events.append(DriftEvent(object_id=obj.id, kind="color", amount=float(a)))
        return events, changes
