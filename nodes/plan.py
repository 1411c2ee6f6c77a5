"""Plan: perceive the start frame and split the action into sub-actions; later calls replan the rest.

The PlanAgent is the rule planner (`planner.py`) or an LLM (`llm_agents.py`,
falling back to the rule planner when its replies stay invalid). With
reflective memory, each sub-action starts with the phrasing that fixed its kind
before (`recall.py`). The plan and the ledger are artifacts; the state gets
their refs and the cursor.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from langgraph.runtime import Runtime

from ..memory.traces import PlanRecord
from ..tools.errors import PerceptionError
from ..tools.perception import PerceivedObject, perceive
from ..tools.scene_fit import scene_fit
from ..vocabulary.config import RunContext
from ..vocabulary.state import EpisodeState, Plan
from .context import NodeContext
from .ledger import ledger_from, seen_in
from .planner import RulePlanAgent, assign_ids
from .recall import apply_lessons

NO_OBJECTS = ("no objects found in the start image; SPIRAL's offline agents read the tabletop world "
              "(try `spiral demo`, or render a scene with tools.world)")


def require_objects(scene: list[PerceivedObject]) -> None:
    if not any(not o.is_container for o in scene):
        raise PerceptionError(NO_OBJECTS)


def position(plan: Plan, cursor: int) -> dict:
    """State fields for a plan positioned at `cursor` (its step's prompt is the instruction)."""
    current = plan.sub_actions[cursor] if cursor < len(plan.sub_actions) else None
    return {"plan_size": len(plan.sub_actions), "plan_version": plan.version, "cursor": cursor,
            "instruction": current.prompt if current else "",
            "instruction_flags": list(current.flags) if current else [], "attempts": []}


def plan(state: EpisodeState, runtime: Runtime[RunContext]) -> dict:
    """First call: plan from the start frame. Later calls: replan the rest from the last accepted frame."""
    ctx = NodeContext.of(state, runtime)
    return replan(state, ctx) if state.plan_ref else first_plan(state, ctx)


def offline_readers(settings: RunContext) -> list[str]:
    """The parts of this run that read the scene from pixels with the tabletop world's perception."""
    return [name for name, reads in (("the sim backbone", settings.backbone == "sim"),
                                     ("the rule planner", settings.planner == "rule"),
                                     ("the perception critic", settings.critic in ("perception", "ensemble"))) if reads]


def read_start(frame, settings: RunContext, read: Callable[[np.ndarray], list[PerceivedObject]] = perceive,
               ) -> tuple[list[PerceivedObject], str]:
    """The start image's objects (read as the run reads its frames, so the ledger and the critic agree on
    every outline), and a note when it is outside the tabletop world (then no objects: the LLM agents read it
    themselves). Refused in one line when an offline reader would have to read it."""
    fit = scene_fit(frame)
    if not fit.is_tabletop:
        readers = offline_readers(settings)
        if readers:
            raise PerceptionError(
                f"the start image does not look like SPIRAL's tabletop world: {fit.reason()}. "
                f"{', '.join(readers).capitalize()} read only that world (make one with `spiral scene`); for other "
                "images use a real backbone with --planner llm --critic llm")
        return [], (f"start image outside the tabletop world ({fit.reason()}): no object list; the LLM agents "
                    "name what they see")
    scene = read(frame)
    if settings.planner == "rule":
        require_objects(scene)
    return scene, ""


def first_plan(state: EpisodeState, ctx: NodeContext) -> dict:
    frame = ctx.artifacts.get_frame(state.image)
    scene, note = read_start(frame, ctx.settings, ctx.reading.perceive)
    ledger = ledger_from(scene, state.image)
    if note:
        ledger.notes.append(note)
    new_plan, record = None, PlanRecord(thread_id=ctx.thread_id, version=0, plan="", planner="rule")
    if ctx.settings.planner == "llm":
        from .llm_agents import LLMPlanAgent

        steps, call = LLMPlanAgent(ctx.settings).plan(state.action, scene, frame)
        record = record.model_copy(update={"planner": "llm", "usage": call.evidence(), "fallback": call.error
                                           if call.fallback else ""})
        if steps is not None:
            new_plan = Plan(goal=state.action, sub_actions=[s.model_copy(update={"id": f"s{i}"})
                                                            for i, s in enumerate(steps)])
        else:
            ledger.notes.append(f"planner: LLM reply invalid after {call.tries} tries; used the rule planner")
    if new_plan is None:
        new_plan = RulePlanAgent().plan(state.action, scene)
    if ctx.lesson_store is not None:
        new_plan, recalled = apply_lessons(new_plan, ctx.lesson_store, ledger)
        ledger.notes.append(f"reflective memory: {recalled} of {len(new_plan.sub_actions)} sub-actions start "
                            "with a phrasing learned in earlier episodes")
    plan_ref = ctx.artifacts.put_model(new_plan)
    ctx.traces.record_plan(record.model_copy(update={"plan": plan_ref, "sub_actions": len(new_plan.sub_actions)}))
    return {"plan_ref": plan_ref, "ledger_ref": ctx.artifacts.put_model(ledger), **position(new_plan, 0),
            "status": "running"}


def nothing_left(old: Plan, state: EpisodeState) -> str:
    """Why a replan that finds nothing left to do after a failure does not make the episode done."""
    step = old.sub_actions[state.cursor] if state.cursor < len(old.sub_actions) else None
    critique = state.attempts[-1].critique if state.attempts else None
    what = f" ({step.description})" if step else ""
    why = f": {critique.feedback.rstrip('.')}" if critique is not None else ""
    return (f"sub-action {state.cursor + 1}{what} failed{why}; the replan found nothing left to do, so the planner's "
            "view of the scene and the critic's disagree")


def replan(state: EpisodeState, ctx: NodeContext) -> dict:
    ledger = ctx.ledger(state)
    frame = ctx.artifacts.get_frame(ledger.last_frame)
    seen = seen_in(ledger, frame, ctx.reading.perceive)
    old = ctx.plan(state)
    new_plan = None
    record = PlanRecord(thread_id=ctx.thread_id, version=old.version + 1, plan="", planner="rule")
    if ctx.settings.planner == "llm":
        from .llm_agents import replan_with_llm

        scene = [obj.model_copy(update={"id": oid}) for oid, obj in seen.items()]
        new_plan, call = replan_with_llm(ctx.settings, old, state.cursor, scene, frame, ledger.established)
        record = record.model_copy(update={"planner": "llm", "usage": call.evidence(),
                                           "fallback": call.error if call.fallback else ""})
        if new_plan is not None:
            kept, rest = new_plan.sub_actions[:state.cursor], new_plan.sub_actions[state.cursor:]
            new_plan = new_plan.model_copy(update={"sub_actions": [*kept, *assign_ids(old, rest)]})
    if new_plan is None:
        new_plan = RulePlanAgent().replan(old, state.cursor, state.cursor, seen)
    plan_ref = ctx.artifacts.put_model(new_plan)
    ctx.traces.record_plan(record.model_copy(update={"plan": plan_ref, "sub_actions": len(new_plan.sub_actions)}))
    update = position(new_plan, state.cursor)
    if update["plan_size"] <= state.cursor:  # the failing sub-action was dropped as if already done
        update["ended_early"] = nothing_left(old, state)
    return {**update, "plan_ref": plan_ref, "replans": state.replans + 1,
            "instruction_flags": list(dict.fromkeys(["explicit", *update["instruction_flags"]]))}
