"""The perception CriticAgent: judge a segment from its pixels against the plan and the ledger.

It tracks every known object through the segment's frames (tools/perception.py,
which remembers frames it has already seen) and asks four questions:

* **action completion** — do the sub-action's post-conditions hold at the end?
* **object fidelity** — did the right object move, and nothing else (position
  against the ledger, colour against the *start* of the episode)?
* **temporal consistency** — does the segment start where the last accepted one
  ended, with no object jumping between frames?
* **physical plausibility** — smooth paths, nothing left interpenetrating.

It writes what went wrong in words, which failure it was, and how to fix the
instruction, and keeps its dense measurements as evidence (every object's
shift, every post-condition, every object's largest step) for the traces.

How it reads frames, and with which tolerances, is the run's `Reading`
(nodes/reading.py): the simulator's sharp frames as they always were, or a
learned decoder's soft ones (outlines at half of each edge, ghosts and erased
contents caught, the subject checked against the planner's goal).
"""

from __future__ import annotations

import numpy as np

from ..tools.perception import PerceivedObject, match_objects
from ..tools.pixels import classify_pixels, coarse_difference
from ..tools.predicates import Predicate, distance_to_goal, evaluate
from ..tools.world.render import ELEVATION
from ..tools.world.scene import TABLE_SIZE
from ..vocabulary.state import Critique, CritiqueScores, Ledger, SubAction
from .goal import goal_for
from .ledger import MATCH_DISTANCE, known_looks, seen_in, words_for
from .reading import SHARP, Reading

STRANGER_PIXELS = 40
"""Pixels (at 128x128) an unknown object needs to count as one: the judge's `EXTRA_MIN_PIXELS`, so a
speck of decoder noise is not an object."""

SUGGESTIONS = {
    "incomplete": "Say that it must get there: 'pick up ... and place it all the way inside/on ...'.",
    "no_motion": "Use an explicit manner: 'pick up the ... and place it ...'.",
    "wrong_object": "Name the object by size, colour and shape, and say that only it moves.",
    "drift": "Add 'Keep every other object still.'",
    "discontinuity": "Regenerate with a new seed and keep every other object still.",
    "missing_object": "Replan from the current frame: the object is not where the plan expects it.",
}


class PerceptionCritic:
    """Offline critic: perception measurements and fixed tolerances, no LLM. `reading` says how frames are
    read and which tolerances apply (nodes/reading.py): the simulator's sharp frames by default."""

    def __init__(self, reading: Reading = SHARP) -> None:
        self.reading = reading

    def judge(self, sub: SubAction, frames: np.ndarray, conditioning: np.ndarray, ledger: Ledger,
              movers: set[str] | None = None) -> Critique:
        """Score a segment; `movers` are the objects allowed to move (default: the sub-action's)."""
        known = known_looks(ledger)
        tracks, unknown_end = self._track(known, frames)
        start, end = tracks[0], tracks[-1]
        if self.reading.start_is_conditioning:
            start = seen_in(ledger, conditioning, self.reading.perceive)
        if movers is None:
            movers = {sub.subject} | ({sub.partner} if sub.partner else set())
        evidence: dict[str, float | str] = {}
        end = self._hidden_subject(sub, tracks, end, evidence)
        if self.reading.contents_by_colour:
            end, unknown_end = self._subject_by_colour(sub, ledger, end, unknown_end, evidence)
        housed = self._housed(ledger, end, movers)

        # action completion
        posts = [Predicate.parse(p) for p in sub.postconditions]
        held = [evaluate(p, end) for p in posts]  # type: ignore[arg-type]
        checks = list(held)
        if self.reading.goal_tolerance is not None and sub.verb == "move_to" and sub.subject in end:
            off = self._off_goal(sub, conditioning, ledger, end[sub.subject], frames.shape[1])
            if off is not None:
                evidence["planned_goal_distance"] = round(off, 2)
                checks.append(off <= self.reading.goal_tolerance)
        completion = float(np.mean(checks)) if checks else 1.0
        gaps = [distance_to_goal(p, end) for p, ok in zip(posts, held, strict=True) if not ok]  # type: ignore[arg-type]
        if gaps and gaps[0] is not None:
            evidence["goal_distance"] = round(float(gaps[0]), 2)
        elif posts and not gaps:
            evidence["goal_distance"] = 0.0  # reached: a dense reward on this term scores passes too
        for text, ok in zip(sub.postconditions, held, strict=True):
            evidence[f"holds:{text}"] = 1.0 if ok else 0.0

        # object fidelity
        shifts = {oid: self._shift(ledger, oid, end.get(oid)) for oid in known}
        for oid, room in housed.items():  # in a container or under a stacked object: hidden or part-hidden
            if np.isfinite(shifts[oid]) and shifts[oid] > room:
                continue  # moved further than covering explains: the drift check sees it
            evidence[f"housed:{oid}"] = "hidden" if not np.isfinite(shifts[oid]) else round(shifts[oid], 2)
            shifts[oid] = 0.0
        if self.reading.contents_by_colour:
            for oid in self._emptied(ledger, end, [*end.values(), *unknown_end], movers):
                evidence[f"housed:{oid}"] = "gone"
                shifts[oid] = float("inf")
        evidence.update({f"shift:{oid}": round(d, 2) if np.isfinite(d) else "missing" for oid, d in shifts.items()})
        subject_shift = shifts.get(sub.subject, 0.0)
        evidence["subject_displacement"] = round(subject_shift, 2)
        strays = {oid: d for oid, d in shifts.items() if oid not in movers and oid in ledger.objects
                  and ledger.objects[oid].shape not in ("bowl", "plate", "box") and d > self.reading.move_tolerance}
        recolored = {oid: v for oid, v in self._recolored(ledger, end).items()
                     if oid not in housed and not self._in_container(end, oid)}
        strangers = self._strangers(unknown_end, end, frames.shape[1] * frames.shape[2]) \
            if self.reading.unknown_objects_fail else []
        if strangers:
            evidence["unknown_objects"] = len(strangers)
        violations = len(strays) + len(recolored) + len(strangers)
        fidelity = max(0.0, 1.0 - violations / max(len(known), 1)) if violations else 1.0
        if strays:
            evidence["max_bystander_shift"] = round(max(strays.values()), 2)
        if recolored:
            evidence["max_color_shift"] = round(max(recolored.values()), 3)

        # temporal consistency
        first_diff = coarse_difference(frames[0], conditioning)
        steps = self._steps(tracks)
        jumps = self._max_jump(steps)
        evidence.update({f"step:{oid}": round(v, 2) for oid, v in self._largest_steps(steps).items()})
        evidence["first_frame_diff"] = round(first_diff, 3)
        evidence["max_jump"] = round(jumps, 2)
        temporal = 1.0
        if first_diff > self.reading.max_first_frame_diff:
            temporal -= 0.5
        if jumps > 0:
            temporal -= 0.5
        temporal_ok = first_diff <= self.reading.max_first_frame_diff and (jumps == 0 or not self.reading.jumps_fail)

        plausibility = 1.0 - 0.5 * self._interpenetrating(
            end, contained_may_overlap=self.reading.contents_by_colour)
        unknown = float(np.mean(classify_pixels(frames[-1]) < 0))
        quality = float(np.clip(1.0 - 10.0 * unknown, 0.0, 1.0))
        scores = CritiqueScores(action_completion=completion, object_fidelity=fidelity,
                                temporal_consistency=max(temporal, 0.0), physical_plausibility=plausibility,
                                visual_quality=quality)
        passed = completion >= 1.0 and fidelity >= 1.0 and temporal_ok and plausibility >= 1.0
        failure, feedback = self._diagnose(sub, ledger, start, end, strays, recolored, strangers, subject_shift,
                                           completion, evidence, 1.0 if temporal_ok else temporal, plausibility)
        if passed:
            failure, feedback = None, f"Done: {sub.description}; nothing else moved."
        hidden_at = (float(evidence["hidden_x"]), float(evidence["hidden_y"])) if "hidden_x" in evidence else None
        return Critique(scores=scores, passed=passed, failure=failure, feedback=feedback,
                        suggestion=SUGGESTIONS.get(failure or "", ""), replan=failure == "missing_object",
                        hidden_at=hidden_at, evidence=evidence)

    def _off_goal(self, sub: SubAction, conditioning: np.ndarray, ledger: Ledger, seen: PerceivedObject,
                  height: int) -> float | None:
        """How far (table units) the subject ends from where the planner's goal puts it; None without a goal."""
        goal = goal_for(sub, conditioning, ledger, self.reading.perceive)
        if not goal:
            return None
        scale = height / TABLE_SIZE
        to_x, to_y = goal[0].to[0] / scale, goal[0].to[1] / scale
        return float(np.hypot(seen.x - to_x, seen.y - ELEVATION * seen.z - to_y))

    # -- occlusion -------------------------------------------------------
    @staticmethod
    def _hidden_subject(sub: SubAction, tracks: list[dict[str, PerceivedObject]], end: dict[str, PerceivedObject],
                        evidence: dict[str, float | str]) -> dict[str, PerceivedObject]:
        """A subject put into a container that others then hide: where it was last seen, if that is inside.

        The ledger learns its place from the verdict's `hidden_at` (nodes/advance.py)."""
        if sub.verb != "put_in" or sub.subject in end or not sub.target or sub.target not in end:
            return end
        sightings = [frame[sub.subject] for frame in tracks if sub.subject in frame]
        if not sightings:
            return end
        last = sightings[-1].model_copy(update={"occluded": True})
        if not evaluate(Predicate(name="inside", args=[sub.subject, sub.target]), {**end, sub.subject: last}):
            return end
        evidence.update({"hidden_x": round(last.x, 2), "hidden_y": round(last.y, 2)})
        return {**end, sub.subject: last}

    @staticmethod
    def _housed(ledger: Ledger, end: dict[str, PerceivedObject], movers: set[str]) -> dict[str, float]:
        """Bystanders the ledger puts in a container or under a stacked object, and how far (table units)
        they may seem to move as they are covered: the container's half size, or the covering object's.
        Only while what houses them is where the ledger says."""
        records = ledger.objects
        out: dict[str, float] = {}
        for oid, rec in records.items():
            if oid in movers or rec.is_container:
                continue
            for host in records.values():
                if host.id == oid:
                    continue
                holds = host.is_container and evaluate(Predicate(name="inside", args=[oid, host.id]), records)
                covers = not host.is_container and evaluate(Predicate(name="on", args=[host.id, oid]), records)
                if not (holds or covers):
                    continue
                seen = end.get(host.id)
                if host.is_container and (seen is None or np.hypot(seen.x - host.x, seen.y - host.y) > 2.5):
                    continue  # the container itself moved or vanished: that is for the checks to see
                out[oid] = float(max(host.half_extent))
        return out

    @staticmethod
    def _in_container(end: dict[str, PerceivedObject], oid: str) -> bool:
        """Whether an object ends inside a container (its rim hides part of it: its colour says little)."""
        return any(evaluate(Predicate(name="inside", args=[oid, cid]), end) for cid, c in end.items() if c.is_container)

    # -- measurements ----------------------------------------------------
    def _track(self, known: dict, frames: np.ndarray) -> tuple[list[dict[str, PerceivedObject]], list[PerceivedObject]]:
        """Objects frame by frame, each matched near where it was in the frame before; and what the last
        frame shows that matches no known object."""
        tracks, looks, unmatched = [], dict(known), []
        for objects in self.reading.perceive_frames()(frames):
            seen = match_objects(looks, objects, max_distance=MATCH_DISTANCE)
            tracks.append(seen)
            looks.update({oid: (*looks[oid][:3], o.x, o.y) for oid, o in seen.items()})
            matched = {id(o) for o in seen.values()}
            unmatched = [o for o in objects if id(o) not in matched]
        return tracks, unmatched

    @staticmethod
    def _subject_by_colour(sub: SubAction, ledger: Ledger, end: dict[str, PerceivedObject],
                           unknown: list[PerceivedObject], evidence: dict[str, float | str],
                           ) -> tuple[dict[str, PerceivedObject], list[PerceivedObject]]:
        """A put-in subject not found by its look, when an unknown object of its colour lies inside the target
        container: the rim hides part of it, so a soft frame reads it as another shape or size there."""
        rec = ledger.objects.get(sub.subject)
        if sub.verb != "put_in" or sub.subject in end or rec is None or not sub.target or sub.target not in end:
            return end, unknown
        container = end[sub.target]
        for obj in unknown:
            if obj.color == rec.color and not obj.is_container and PerceptionCritic._inside(obj, container):
                evidence["subject_by_colour"] = 1.0
                return {**end, sub.subject: obj}, [o for o in unknown if o is not obj]
        return end, unknown

    @staticmethod
    def _inside(obj: PerceivedObject, container: PerceivedObject) -> bool:
        objects = {"s": obj, "c": container}
        return evaluate(Predicate(name="inside", args=["s", "c"]), objects)  # type: ignore[arg-type]

    @staticmethod
    def _emptied(ledger: Ledger, end: dict[str, PerceivedObject], seen: list[PerceivedObject],
                 movers: set[str]) -> list[str]:
        """Objects the ledger puts in a container that is still in view, with nothing of their colour left
        inside it: erased, not hidden."""
        records = ledger.objects
        gone = []
        for oid, rec in records.items():
            if oid in movers or oid in end or rec.is_container:
                continue
            for cid, host in records.items():
                if not host.is_container or cid not in end or \
                        not evaluate(Predicate(name="inside", args=[oid, cid]), records):
                    continue
                if not any(o.color == rec.color and not o.is_container and PerceptionCritic._inside(o, end[cid])
                           for o in seen):
                    gone.append(oid)
        return gone

    @staticmethod
    def _strangers(unknown: list[PerceivedObject], end: dict[str, PerceivedObject], frame_pixels: int,
                   ) -> list[PerceivedObject]:
        """Objects in the last frame that no ledger record accounts for, outside every container (inside one
        the rim hides parts of what it holds) and big enough to be an object (`STRANGER_PIXELS` at 128x128)."""
        containers = [o for o in end.values() if o.is_container]
        least = STRANGER_PIXELS * frame_pixels / (128 * 128)
        return [o for o in unknown if not o.is_container and o.pixels >= least
                and not any(PerceptionCritic._inside(o, c) for c in containers)]

    @staticmethod
    def _shift(ledger: Ledger, oid: str, seen: PerceivedObject | None) -> float:
        rec = ledger.objects.get(oid)
        if rec is None or seen is None:
            return float("inf") if rec is not None else 0.0
        return float(np.hypot(seen.x - rec.x, seen.y - rec.y))

    def _recolored(self, ledger: Ledger, end: dict[str, PerceivedObject]) -> dict[str, float]:
        out = {}
        for oid, obj in end.items():
            rec = ledger.objects.get(oid)
            if rec is None or obj.occluded or obj.is_container:
                continue
            ref = np.asarray(rec.start_rgb)
            change = float(np.linalg.norm(np.asarray(obj.mean_rgb) - ref) / max(np.linalg.norm(ref), 1.0))
            if change > self.reading.color_tolerance:
                out[oid] = change
        return out

    @staticmethod
    def _steps(tracks: list[dict[str, PerceivedObject]]) -> dict[str, list[float | None]]:
        """Each tracked object's per-frame steps (table units); None where it is missing from either frame."""
        ids = sorted(set().union(*tracks)) if tracks else []
        return {oid: [float(np.hypot(cur[oid].x - prev[oid].x, cur[oid].y - prev[oid].y))
                      if oid in prev and oid in cur else None for prev, cur in zip(tracks, tracks[1:])]
                for oid in ids}

    def _max_jump(self, steps: dict[str, list[float | None]]) -> float:
        """Largest per-frame step that is out of line with its neighbours (a teleport).

        Smooth motion speeds up and slows down gradually; a jump is a step far
        larger than the steps around it (a missing step counts as none). Returns 0 when there is none.
        """
        worst = 0.0
        for track in steps.values():
            known = [step or 0.0 for step in track]
            for i, step in enumerate(known):
                around = max(known[i - 1] if i > 0 else 0.0, known[i + 1] if i + 1 < len(known) else 0.0)
                if step > self.reading.max_step and step > 2.5 * around:
                    worst = max(worst, step)
        return worst

    @staticmethod
    def _largest_steps(steps: dict[str, list[float | None]]) -> dict[str, float]:
        """Each tracked object's largest per-frame step: the dense form of `max_jump`."""
        return {oid: max(known) for oid, track in steps.items() if (known := [s for s in track if s is not None])}

    @staticmethod
    def _interpenetrating(end: dict[str, PerceivedObject], contained_may_overlap: bool = False) -> int:
        """Resting movables whose footprints overlap without one standing on the other (outside containers,
        with `contained_may_overlap`)."""
        objs = [o for o in end.values() if not o.is_container]
        if contained_may_overlap:
            objs = [o for o in objs if not any(PerceptionCritic._inside(o, c) for c in end.values() if c.is_container)]
        count = 0
        for i, a in enumerate(objs):
            for b in objs[i + 1:]:
                if a.z > 0 or b.z > 0 or a.occluded or b.occluded:
                    continue
                (ax, ay), (bx, by) = a.half_extent, b.half_extent
                if abs(a.x - b.x) < ax + bx - 1 and abs(a.y - b.y) < ay + by - 1:
                    count += 1
        return min(count, 2)

    def _diagnose(self, sub, ledger, start, end, strays, recolored, strangers, subject_shift, completion, evidence,
                  temporal, plausibility):
        name = sub.subject_desc

        def words(oid: str) -> str:
            return words_for(ledger, oid)
        if sub.subject not in start:
            return "missing_object", f"The {name} is not visible at the start of the segment."
        if completion < 1.0:
            if not np.isfinite(subject_shift):
                return "discontinuity", f"The {name} disappeared from view during the segment."
            if subject_shift <= self.reading.move_tolerance:
                big = {k: v for k, v in strays.items() if v > 6.0}
                if big:
                    other = max(big, key=big.get)
                    return "wrong_object", (f"The {words(other)} moved ({big[other]:.0f} px) "
                                            f"instead of the {name}.")
                return "no_motion", f"The {name} did not move; the sub-action did not happen."
            off = evidence.get("planned_goal_distance")
            if evidence.get("goal_distance") == 0.0 and isinstance(off, float):
                return "incomplete", (f"The {name} moved {subject_shift:.0f} px but set down {off:.0f} px from where "
                                      "the plan puts it.")
            gap = evidence.get("goal_distance")
            where = f", {gap:.0f} px short of the goal" if isinstance(gap, float) else ""
            return "incomplete", f"The {name} moved {subject_shift:.0f} px but stopped part way{where}."
        if strays or recolored or strangers:
            parts = [f"the {words(k)} " + (f"shifted {v:.0f} px" if np.isfinite(v) else "disappeared")
                     for k, v in strays.items()]
            parts += [f"the {words(k)} changed colour by {100 * v:.0f}%" for k, v in recolored.items()]
            parts += [f"{'an' if o.color[0] in 'aeiou' else 'a'} {o.color} {o.shape} appeared at ({o.x:.0f}, "
                      f"{o.y:.0f}) that is not in the scene" for o in strangers]
            return "drift", "The sub-action happened but " + "; ".join(parts) + "."
        if temporal < 0.99:
            return "discontinuity", "The segment does not continue smoothly from the previous one."
        if plausibility < 1.0:
            return "drift", "Objects end up overlapping each other."
        return None, ""

