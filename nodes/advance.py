"""Advance: accept a segment (the passing one, or the best when the budget is spent), write what it
established into the ledger, and move the cursor on."""

from __future__ import annotations

from langgraph.runtime import Runtime

from ..memory.traces import SubActionRecord
from ..vocabulary.config import RunContext
from ..vocabulary.state import Attempt, EpisodeState, Ledger, Outcome
from .context import NodeContext
from .ledger import remembered_objects, seen_in


def best_attempt(attempts: list[Attempt]) -> Attempt:
    """The one a reviewer approved, else the passing one, else the one that got furthest
    (completion, then mean score); one a reviewer rejected only when nothing else is left."""
    def key(a: Attempt):
        c = a.critique
        scores = (c.passed, c.scores.action_completion, c.scores.mean) if c else (False, 0.0, 0.0)
        return (a.review == "approved", a.review != "rejected", *scores)

    return max(attempts, key=key)


def advance(state: EpisodeState, runtime: Runtime[RunContext]) -> dict:
    ctx = NodeContext.of(state, runtime)
    chosen = best_attempt(state.attempts)
    critique = chosen.critique
    assert critique is not None
    accepted = critique.passed or chosen.review == "approved"
    plan, ledger = ctx.plan(state), ctx.ledger(state)
    step = plan.sub_actions[state.cursor]
    seen = seen_in(ledger, ctx.artifacts.get_frame(chosen.last_frame), ctx.reading.perceive)
    # a segment approved over the critic becomes the new reference, as a best-effort one does
    objects = remembered_objects(ledger, seen, {step.subject, step.partner}, passed=critique.passed)
    if critique.hidden_at is not None and step.subject in objects:
        # put into a container and hidden there by others: the critic saw it go in (nodes/critic.py)
        x, y = critique.hidden_at
        objects[step.subject] = objects[step.subject].model_copy(update={"x": x, "y": y, "z": 0.0})
    notes = [*ledger.notes] + ([] if accepted else [f"step {step.index + 1}: {critique.feedback}"])
    if chosen.review == "approved" and not critique.passed:
        notes.append(f"step {step.index + 1}: a reviewer approved it over the critic ({critique.feedback})")
    outcome = Outcome(index=step.index, passed=accepted, tries=len(state.attempts), segment=chosen.segment,
                      score=round(critique.scores.mean, 4), reviewed=chosen.review == "approved")
    new_ledger = Ledger(objects=objects, established=[*ledger.established, *(step.postconditions if accepted else [])],
                        outcomes=[*ledger.outcomes, outcome], notes=notes, first_frame=ledger.first_frame,
                        last_frame=chosen.last_frame)
    ctx.traces.record_sub_action(SubActionRecord(
        thread_id=ctx.thread_id, plan_version=state.plan_version, index=step.index, sub_action_id=step.id,
        verb=step.verb, subject=step.subject, description=step.description, postconditions=step.postconditions,
        passed=accepted, tries=len(state.attempts), segment=chosen.segment))
    cursor = state.cursor + 1
    nxt = plan.sub_actions[cursor] if cursor < state.plan_size else None
    return {"ledger_ref": ctx.artifacts.put_model(new_ledger), "cursor": cursor, "attempts": [],
            "instruction": nxt.prompt if nxt else "", "instruction_flags": list(nxt.flags) if nxt else []}
