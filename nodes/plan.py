"""PlanAgent: split a high-level action into object-centric sub-actions.

The offline `RulePlanAgent` perceives the objects in the frame, parses the
action with the grammar in `grammar.py`, grounds every noun phrase in what it
sees, and writes sub-actions with pre- and post-conditions. Replanning keeps
what is already accepted and restates the remaining steps from the current
state: steps whose post-conditions already hold are dropped, the instructions
become explicit, and a step that keeps failing is moved behind independent ones.
"""

from __future__ import annotations

from langgraph.runtime import Runtime

from ..graph.config import RunContext
from ..graph.state import EpisodeState, Ledger, ObjectRecord, Plan, SubAction
from ..memory.artifacts import ArtifactStore
from .runtime import artifact_store, settings_of, thread_id, trace_db
from ..tools.errors import ActionParseError, PerceptionError
from ..tools.media import load_image
from ..tools.perception import PerceivedObject, match_objects, perceive
from ..tools.predicates import Predicate, evaluate
from ..tools.words import ObjectRef
from .grammar import Clause, parse_action
from .prompts.generator import write_instruction

PLACE_WORDS = {"left": "left edge of the table", "right": "right edge of the table",
               "front": "front edge of the table", "back": "back edge of the table",
               "center": "center of the table"}


def describe(obj: PerceivedObject, scene: list[PerceivedObject], with_size: bool = False) -> str:
    """Colour and shape, plus size when another object shares both (or when asked)."""
    if obj.is_container:
        return obj.describe()
    twins = [o for o in scene if o is not obj and o.color == obj.color and o.shape == obj.shape]
    if (with_size or twins) and obj.shape != "block":
        return f"{obj.size} {obj.color} {obj.shape}"
    return f"{obj.color} {obj.shape}"


def _matches(ref: ObjectRef, scene: list[PerceivedObject], containers: bool) -> list[PerceivedObject]:
    return [o for o in scene if o.is_container == containers
            and (ref.color is None or o.color == ref.color or (containers and ref.shape is not None))
            and (ref.shape is None or o.shape == ref.shape)
            and (ref.size is None or o.size == ref.size)]


def _one(ref: ObjectRef, scene: list[PerceivedObject], containers: bool = False) -> PerceivedObject:
    found = _matches(ref, scene, containers)
    if len(found) == 1:
        return found[0]
    seen = ", ".join(describe(o, scene, with_size=True) for o in scene) or "nothing"
    if not found:
        raise ActionParseError(f"there is no {ref.words()} in the start image; I see: {seen}")
    options = ", ".join(describe(o, scene, with_size=True) for o in found)
    raise ActionParseError(f"'{ref.words()}' is ambiguous ({options}); name it by colour and size")


class RulePlanAgent:
    """Offline planner: grammar + perception, no LLM."""

    def plan(self, action: str, scene: list[PerceivedObject]) -> Plan:
        steps: list[SubAction] = []
        for clause in parse_action(action):
            for step in self._ground(clause, scene):
                steps.append(step.model_copy(update={"index": len(steps)}))
        return Plan(goal=action, sub_actions=steps)

    def replan(self, plan: Plan, cursor: int, failing: int, seen: dict[str, PerceivedObject]) -> Plan:
        """Remaining steps from the current state, explicit, the failing one moved back if it can be."""
        remaining = [s for s in plan.sub_actions[cursor:]
                     if not all(evaluate(Predicate.parse(p), seen) for p in s.postconditions)]
        if len(remaining) > 1 and remaining[0].index == failing:
            head, rest = remaining[0], remaining[1:]
            if not any(_objects_of(s) & _objects_of(head) for s in rest):
                remaining = [*rest, head]
        restated = []
        for i, step in enumerate(remaining):
            key = _template_key(step)
            prompt = write_instruction(key, step.subject_desc, step.target_desc, step.partner_desc, ("explicit",))
            restated.append(step.model_copy(update={"index": cursor + i, "prompt": prompt}))
        return Plan(goal=plan.goal, sub_actions=[*plan.sub_actions[:cursor], *restated], version=plan.version + 1)

    # -- grounding -------------------------------------------------------
    def _ground(self, clause: Clause, scene: list[PerceivedObject]) -> list[SubAction]:
        by_id = {o.id: o for o in scene}
        if clause.kind == "put_in":
            container = _one(clause.other or ObjectRef(), scene, containers=True)
            if clause.subject.group:
                subjects = sorted(_matches(clause.subject, scene, False), key=lambda o: o.x)
                if not subjects:
                    raise ActionParseError(f"there are no {clause.subject.words()}s in the start image")
                subjects = [o for o in subjects
                            if not evaluate(Predicate(name="inside", args=[o.id, container.id]), by_id)]
            else:
                subjects = [_one(clause.subject, scene)]
            return [self._step("put_in", s, scene, container) for s in subjects]
        if clause.kind == "stack":
            a, b = _one(clause.subject, scene), _one(clause.other or ObjectRef(), scene)
            if b.shape == "ball":
                raise ActionParseError(f"cannot stack on the {describe(b, scene)}: balls roll; stack on a cube or block")
            return [self._step("stack", a, scene, b)]
        if clause.kind == "swap":
            a, b = _one(clause.subject, scene), _one(clause.other or ObjectRef(), scene)
            return [self._step("swap", a, scene, b)]
        if clause.kind == "place":
            return [self._step("move_to", _one(clause.subject, scene), scene, place=clause.place)]
        if clause.kind == "relative":
            a, b = _one(clause.subject, scene), _one(clause.other or ObjectRef(), scene)
            return [self._step("move_to", a, scene, b, place=clause.place)]
        group = sorted(_matches(clause.subject, scene, False), key=lambda o: (o.half_extent[0], o.x))
        if len(group) < 2:
            raise ActionParseError(f"lining up needs at least two {clause.subject.words()}s; found {len(group)}")
        steps = [self._step("move_to", group[0], scene, place="left")]
        steps += [self._step("move_to", b, scene, a, place="right_of") for a, b in zip(group, group[1:])]
        return steps

    def _step(self, verb: str, subject: PerceivedObject, scene: list[PerceivedObject],
              other: PerceivedObject | None = None, place: str | None = None) -> SubAction:
        subj = describe(subject, scene)
        other_desc = describe(other, scene) if other is not None else ""
        pre = [f"on_table({subject.id})"] if verb != "swap" else []
        if verb == "put_in":
            assert other is not None
            post, target, desc = [f"inside({subject.id}, {other.id})"], other.id, f"put the {subj} in the {other_desc}"
        elif verb == "stack":
            assert other is not None
            post, target, desc = [f"on({subject.id}, {other.id})"], other.id, f"stack the {subj} on the {other_desc}"
        elif verb == "swap":
            assert other is not None
            post = [f"at({subject.id}, {other.x:g}, {other.y:g})", f"at({other.id}, {subject.x:g}, {subject.y:g})"]
            return self._sub("swap", subject.id, other.id, None, subj, "", other_desc, pre, post,
                             f"swap the {subj} and the {other_desc}")
        elif place in ("left_of", "right_of"):
            assert other is not None
            post, target = [f"{place}({subject.id}, {other.id})"], other.id
            desc = f"put the {subj} {place.replace('_', ' ')} the {other_desc}"
        else:
            assert place is not None
            post, target, other_desc = [f"at_edge({subject.id}, {place})"], place, PLACE_WORDS[place]
            desc = f"move the {subj} to the {other_desc}"
        return self._sub(verb, subject.id, target, place, subj, other_desc, "", pre, post, desc)

    @staticmethod
    def _sub(verb, subject, target, place, subj_desc, target_desc, partner_desc, pre, post, desc) -> SubAction:
        step = SubAction(index=0, verb=verb, subject=subject, target=target, partner=None,
                         subject_desc=subj_desc, target_desc=target_desc, partner_desc=partner_desc,
                         description=desc, prompt="", preconditions=pre, postconditions=post)
        if verb == "swap":
            step.partner, step.target = target, None
        key = _template_key(step, place)
        step.prompt = write_instruction(key, subj_desc, target_desc, partner_desc)
        return step


def _objects_of(step: SubAction) -> set[str]:
    """Movable objects a step touches (a shared container is no dependency)."""
    ids = {step.subject, step.partner}
    if step.verb != "put_in":
        ids.add(step.target)
    return {i for i in ids if i}


def _template_key(step: SubAction, place: str | None = None) -> str:
    if step.verb != "move_to":
        return step.verb
    post = step.postconditions[0] if step.postconditions else ""
    for rel in ("left_of", "right_of"):
        if post.startswith(rel) or place == rel:
            return rel
    return "move_to"


def ledger_from(scene: list[PerceivedObject], frame_ref: str) -> Ledger:
    records = {o.id: ObjectRecord(id=o.id, shape=o.shape, color=o.color, size=o.size, x=o.x, y=o.y, z=o.z,
                                  start_rgb=o.mean_rgb) for o in scene}
    return Ledger(objects=records, first_frame=frame_ref, last_frame=frame_ref)


def known_looks(ledger: Ledger) -> dict[str, tuple[str, str, str, float, float]]:
    return {r.id: (r.shape, r.color, r.size, r.x, r.y) for r in ledger.objects.values()}


def start_frame(image: str, settings: RunContext, store: ArtifactStore):
    """The start image at the run's size, as pixels and as an artifact ref."""
    import numpy as np
    from PIL import Image

    frame = store.get_frame(image) if image.startswith("sha256:") else load_image(image)
    if frame.shape[:2] != (settings.height, settings.width):
        frame = np.asarray(Image.fromarray(frame).resize((settings.width, settings.height), Image.LANCZOS))
    return frame, store.put_frame(frame)


def save_plan(store: ArtifactStore, plan: Plan) -> str:
    return store.put_bytes(plan.model_dump_json().encode(), "json")


def load_plan(store: ArtifactStore, ref: str) -> Plan:
    return Plan.model_validate_json(store.get_bytes(ref))


def plan_update(store: ArtifactStore, plan: Plan, cursor: int) -> dict:
    """State fields for a (new) plan positioned at `cursor`."""
    current = plan.sub_actions[cursor] if cursor < len(plan.sub_actions) else None
    return {"plan_ref": save_plan(store, plan), "plan_size": len(plan.sub_actions), "plan_version": plan.version,
            "sub_action": current, "cursor": cursor, "instruction": current.prompt if current else "",
            "instruction_flags": list(current.flags) if current else []}


def apply_lessons(plan: Plan, store, ledger: Ledger) -> tuple[Plan, int]:
    """Start each sub-action with the phrasing that fixed its verb on its kind of object before."""
    from ..memory.store import recall_flags

    steps, recalled = [], 0
    for step in plan.sub_actions:
        shape = ledger.objects[step.subject].shape if step.subject in ledger.objects else "object"
        flags = recall_flags(store, step.verb, shape)
        if flags:
            recalled += 1
            step = step.model_copy(update={"flags": flags, "prompt": write_instruction(
                _template_key(step), step.subject_desc, step.target_desc, step.partner_desc, flags)})
        steps.append(step)
    return plan.model_copy(update={"sub_actions": steps}), recalled


def preflight(image: str, action: str, settings: RunContext) -> None:
    """Everything the first plan step would reject, checked before a thread exists: an
    unreadable image, an image with no objects, an action outside the grammar or naming
    objects that are not there. Writes nothing."""
    import numpy as np
    from PIL import Image

    frame = load_image(image)
    if frame.shape[:2] != (settings.height, settings.width):
        frame = np.asarray(Image.fromarray(frame).resize((settings.width, settings.height), Image.LANCZOS))
    scene = perceive(frame)
    if not any(not o.is_container for o in scene):
        raise PerceptionError(NO_OBJECTS)
    if settings.planner == "rule":
        RulePlanAgent().plan(action, scene)


NO_OBJECTS = ("no objects found in the start image; SPIRAL's offline agents read the tabletop world "
              "(try `spiral demo`, or render a scene with tools.world)")


def plan(state: EpisodeState, runtime: Runtime[RunContext]) -> dict:
    """First call: perceive the start image and plan. Later calls: replan the rest."""
    settings = settings_of(state, runtime)
    store = artifact_store(settings)
    agent = RulePlanAgent()
    if not state.plan_ref:
        frame, ref = start_frame(state.image, settings, store)
        scene = perceive(frame)
        if not any(not o.is_container for o in scene):
            raise PerceptionError(NO_OBJECTS)
        ledger = ledger_from(scene, ref)
        new_plan = None
        if settings.planner == "llm":
            from .llm_agents import LLMPlanAgent

            steps, call = LLMPlanAgent(settings).plan(state.action, scene, frame)
            trace_db(settings).record_episode(thread_id(), {"action": state.action, **call.evidence()})
            if steps is not None:
                new_plan = Plan(goal=state.action, sub_actions=steps)
            else:
                ledger.notes.append(f"planner: LLM reply invalid after {call.tries} tries; used the rule planner")
        if new_plan is None:
            new_plan = agent.plan(state.action, scene)
        memory_store = getattr(runtime, "store", None)
        if settings.memory == "reflective" and memory_store is not None:
            new_plan, recalled = apply_lessons(new_plan, memory_store, ledger)
            ledger.notes.append(f"reflective memory: {recalled} of {len(new_plan.sub_actions)} sub-actions start "
                                "with a phrasing learned in earlier episodes")
        return {"settings": settings, "start_frame": ref, "ledger": ledger,
                **plan_update(store, new_plan, 0), "status": "running"}
    frame = store.get_frame(state.ledger.last_frame)
    seen = match_objects(known_looks(state.ledger), perceive(frame), 200.0)
    old = load_plan(store, state.plan_ref)
    new_plan = None
    if settings.planner == "llm":
        from .llm_agents import replan_with_llm

        scene = [obj.model_copy(update={"id": oid}) for oid, obj in seen.items()]
        new_plan, call = replan_with_llm(settings, old, state.cursor, scene, frame, state.ledger.established)
        trace_db(settings).record_episode(thread_id(), {f"replan{state.replans + 1}_{k}": v
                                                        for k, v in call.evidence().items()})
    if new_plan is None:
        new_plan = agent.replan(old, state.cursor, state.cursor, seen)  # type: ignore[arg-type]
    update = plan_update(store, new_plan, state.cursor)
    return {**update, "replans": state.replans + 1, "attempts": [],
            "instruction_flags": list(dict.fromkeys(["explicit", *update["instruction_flags"]]))}
