"""The rule PlanAgent: split an action into object-centric sub-actions grounded in what it sees.

It parses the action with the grammar in `grammar.py`, grounds every noun
phrase in the perceived objects, and writes sub-actions with pre- and
post-conditions and stable ids. Replanning keeps what is already accepted and
restates the remaining steps from the current state: steps whose
post-conditions already hold are dropped, the instructions become explicit,
and a step that keeps failing is moved behind independent ones.

Grounding is a pure function of the action and the scene, memoised: the
session's preflight and the plan node ground an action once between them.
"""

from __future__ import annotations

from functools import lru_cache

from ..tools.errors import ActionParseError
from ..tools.perception import PerceivedObject
from ..tools.predicates import Predicate, evaluate
from ..tools.words import ObjectRef
from ..tools.world.scene import name_among
from ..vocabulary.state import Plan, SubAction
from .grammar import Clause, parse_action
from .prompts.generator import write_instruction

PLACE_WORDS = {"left": "left edge of the table", "right": "right edge of the table",
               "front": "front edge of the table", "back": "back edge of the table",
               "center": "center of the table"}


def _matches(ref: ObjectRef, scene: list[PerceivedObject], containers: bool) -> list[PerceivedObject]:
    return [o for o in scene if o.is_container == containers
            and (ref.color is None or o.color == ref.color or (containers and ref.shape is not None))
            and (ref.shape is None or o.shape == ref.shape)
            and (ref.size is None or o.size == ref.size)]


def _extreme(ref: ObjectRef, found: list[PerceivedObject], scene: list[PerceivedObject]) -> list[PerceivedObject]:
    """The matches that are most what the superlative says (more than one when they tie)."""
    if ref.rank is None or not found:
        return found
    if ref.rank in ("nearest", "farthest"):
        assert ref.anchor is not None
        anchor = _one(ref.anchor, scene, containers=ref.anchor.shape in ("bowl", "plate", "box"))
        found = [o for o in found if o.id != anchor.id]
        key = {o.id: (o.x - anchor.x) ** 2 + (o.y - anchor.y) ** 2 for o in found}
    elif ref.rank in ("largest", "smallest"):
        key = {o.id: float(o.half_extent[0] * o.half_extent[1]) for o in found}
    else:
        key = {o.id: o.x for o in found}
    if not key:
        return []
    best = (max if ref.rank in ("largest", "farthest", "rightmost") else min)(key.values())
    return [o for o in found if abs(key[o.id] - best) < 1.0]


def _one(ref: ObjectRef, scene: list[PerceivedObject], containers: bool = False) -> PerceivedObject:
    matched = _matches(ref, scene, containers)
    found = _extreme(ref, matched, scene)
    if len(found) == 1:
        return found[0]
    seen = ", ".join(name_among(o, scene, with_size=True) for o in scene) or "nothing"
    if not found:
        raise ActionParseError(f"there is no {ref.words()} in the start image; I see: {seen}")
    names = [name_among(o, scene, with_size=True) for o in found]
    if len(set(names)) < len(names):  # look-alikes: listing "white bowl, white bowl" offers no choice
        twins = sorted({n for n in names if names.count(n) > 1})
        raise ActionParseError(f"'{ref.words()}' matches {len(found)} objects and some look the same "
                               f"({', '.join(f'{names.count(n)}x {n}' for n in twins)}): no words can pick one; "
                               "with look-alikes use --planner llm")
    options = ", ".join(names)
    if ref.rank is not None:
        raise ActionParseError(f"'{ref.words()}' is a tie ({options}); name it by colour and size")
    raise ActionParseError(f"'{ref.words()}' is ambiguous ({options}); name it by colour and size")


def _group(ref: ObjectRef, scene: list[PerceivedObject]) -> list[PerceivedObject]:
    """Every movable object the words name; a count the words give ("both") must be the scene's."""
    found = sorted(_matches(ref, scene, False), key=lambda o: o.x)
    if not found:
        raise ActionParseError(f"there are no {ref.words()}s in the start image")
    if ref.count is not None and len(found) != ref.count:
        names = ", ".join(name_among(o, scene, with_size=True) for o in found)
        raise ActionParseError(f"the action speaks of {ref.count} {ref.words()}s but the start image has "
                               f"{len(found)} ({names}); say 'all' or name them")
    return found


class RulePlanAgent:
    """Offline planner: grammar + perception, no LLM."""

    def plan(self, action: str, scene: list[PerceivedObject]) -> Plan:
        return Plan(goal=action, sub_actions=ground_action(action, scene))

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
            key = template_key(step)
            prompt = write_instruction(key, step.subject_desc, step.target_desc, step.partner_desc, ("explicit",))
            restated.append(step.model_copy(update={"index": cursor + i, "prompt": prompt}))
        return Plan(goal=plan.goal, sub_actions=[*plan.sub_actions[:cursor], *restated], version=plan.version + 1)

    # -- grounding -------------------------------------------------------
    def _ground(self, clause: Clause, scene: list[PerceivedObject]) -> list[SubAction]:
        by_id = {o.id: o for o in scene}
        if clause.kind == "put_in":
            container = _one(clause.other or ObjectRef(), scene, containers=True)
            if clause.subject.group:
                subjects = [o for o in _group(clause.subject, scene)
                            if not evaluate(Predicate(name="inside", args=[o.id, container.id]), by_id)]
            else:
                subjects = [_one(clause.subject, scene)]
            if clause.source is not None:
                source = _one(clause.source, scene, containers=True)
                outside = [o for o in subjects if not evaluate(Predicate(name="inside", args=[o.id, source.id]), by_id)]
                if outside:
                    raise ActionParseError(f"the {name_among(outside[0], scene)} is not in the "
                                           f"{name_among(source, scene)} in the start image")
            return [self.sub_action("put_in", s, scene, container) for s in subjects]
        if clause.subject.group and clause.kind in ("stack", "relative") or \
                clause.kind == "swap" and clause.subject.group and clause.other is not None:
            named = _group(clause.subject, scene)
            verb = {"stack": "stacking", "relative": "putting beside", "swap": "a swap"}[clause.kind]
            raise ActionParseError(f"'{clause.subject.words()}' names {len(named)} objects ("
                                   f"{', '.join(name_among(o, scene, with_size=True) for o in named)}) and {verb} "
                                   "takes one: name one of them by colour and size")
        if clause.kind == "stack":
            a, b = _one(clause.subject, scene), _one(clause.other or ObjectRef(), scene)
            if b.shape == "ball":
                raise ActionParseError(f"cannot stack on the {name_among(b, scene)}: balls roll; stack on a cube or block")
            return [self.sub_action("stack", a, scene, b)]
        if clause.kind == "swap" and clause.other is None:  # "swap the two cubes"
            a, b = _group(clause.subject, scene)
            return [self.sub_action("swap", a, scene, b)]
        if clause.kind == "swap":
            a, b = _one(clause.subject, scene), _one(clause.other or ObjectRef(), scene)
            return [self.sub_action("swap", a, scene, b)]
        if clause.kind == "place" and clause.subject.group:  # "move every ball to the left side": each in turn
            return [self.sub_action("move_to", o, scene, place=clause.place) for o in _group(clause.subject, scene)]
        if clause.kind == "place":
            return [self.sub_action("move_to", _one(clause.subject, scene), scene, place=clause.place)]
        if clause.kind == "relative":
            a, b = _one(clause.subject, scene), _one(clause.other or ObjectRef(), scene)
            return [self.sub_action("move_to", a, scene, b, place=clause.place)]
        group = sorted(_matches(clause.subject, scene, False), key=lambda o: (o.half_extent[0], o.x))
        if len(group) < 2:
            raise ActionParseError(f"lining up needs at least two {clause.subject.words()}s; found {len(group)}")
        steps = [self.sub_action("move_to", group[0], scene, place="left")]
        steps += [self.sub_action("move_to", b, scene, a, place="right_of") for a, b in zip(group, group[1:])]
        return steps

    def sub_action(self, verb: str, subject: PerceivedObject, scene: list[PerceivedObject],
                   other: PerceivedObject | None = None, place: str | None = None) -> SubAction:
        """One grounded step with its pre- and post-conditions and its generator instruction."""
        subj = name_among(subject, scene)
        other_desc = name_among(other, scene) if other is not None else ""
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
        key = template_key(step, place)
        step.prompt = write_instruction(key, subj_desc, target_desc, partner_desc)
        return step


def _objects_of(step: SubAction) -> set[str]:
    """Movable objects a step touches (a shared container is no dependency)."""
    ids = {step.subject, step.partner}
    if step.verb != "put_in":
        ids.add(step.target)
    return {i for i in ids if i}


def template_key(step: SubAction, place: str | None = None) -> str:
    """Which instruction template a step uses (generator prompts, nodes/prompts/generator.py)."""
    if step.verb != "move_to":
        return step.verb
    post = step.postconditions[0] if step.postconditions else ""
    for rel in ("left_of", "right_of"):
        if post.startswith(rel) or place == rel:
            return rel
    return "move_to"


def ground_action(action: str, scene: list[PerceivedObject]) -> list[SubAction]:
    """The action's sub-actions in this scene (indices and ids in order); ActionParseError names what
    is not understood or not there."""
    key = "\n".join(o.model_dump_json() for o in scene)
    return [s.model_copy(deep=True) for s in _grounded(action, key)]


@lru_cache(maxsize=256)
def _grounded(action: str, scene_json: str) -> tuple[SubAction, ...]:
    scene = [PerceivedObject.model_validate_json(line) for line in scene_json.splitlines()]
    agent = RulePlanAgent()
    steps: list[SubAction] = []
    for clause in parse_action(action):
        for step in agent._ground(clause, scene):
            steps.append(step.model_copy(update={"index": len(steps), "id": f"s{len(steps)}"}))
    return tuple(steps)


def assign_ids(old: Plan, steps: list[SubAction]) -> list[SubAction]:
    """Ids for a replan's steps: a step the old plan had (same verb and objects) keeps its id, a new
    one gets the next free id."""
    known = {_identity(s): s.id for s in old.sub_actions}
    taken = {s.id for s in old.sub_actions}
    out = []
    for step in steps:
        sid = known.get(_identity(step)) or ""
        if not sid or sid in {s.id for s in out}:
            n = len(taken)
            while f"s{n}" in taken:
                n += 1
            sid = f"s{n}"
            taken.add(sid)
        out.append(step.model_copy(update={"id": sid}))
    return out


def _identity(step: SubAction) -> tuple:
    return (step.verb, step.subject, step.target, step.partner)
