"""Advance: accept a segment (the passing one, or the best when the budget is spent),
write what it established into the ledger, and move the cursor on."""

from __future__ import annotations

import json

from langgraph.runtime import Runtime

from ..graph.config import RunContext
from ..graph.state import Attempt, EpisodeState, Ledger, Outcome
from ..tools.perception import match_objects, perceive
from .plan import known_looks, load_plan
from .runtime import artifact_store


def best_attempt(attempts: list[Attempt]) -> Attempt:
    """The one a reviewer approved, else the passing one, else the one that got furthest
    (completion, then mean score); one a reviewer rejected only when nothing else is left."""
    def key(a: Attempt):
        c = a.critique
        scores = (c.passed, c.scores.action_completion, c.scores.mean) if c else (False, 0.0, 0.0)
        return (a.review == "approved", a.review != "rejected", *scores)

    return max(attempts, key=key)


def _observed(obj, rebaseline: bool) -> dict:
    """Ledger fields from a perceived object. Colours stay those of the start image (so slow
    drift adds up and gets caught) unless a best-effort segment was accepted: then its state
    is the new reference, or every later segment would fail on the drift already accepted."""
    update = {"x": obj.x, "y": obj.y, "z": obj.z}
    if rebaseline and not obj.occluded:
        update["start_rgb"] = obj.mean_rgb
    return update


def remembered_objects(ledger: Ledger, seen: dict, movers: set, passed: bool) -> dict:
    """Where the ledger expects each object next. After a passing segment only the movers moved;
    everything else keeps its expected place, so drift that stays under the critic's tolerance in
    each segment still adds up and gets caught. A best-effort acceptance makes what is seen the
    new reference for everything."""
    return {oid: rec.model_copy(update=_observed(seen[oid], rebaseline=not passed))
            if oid in seen and (oid in movers or not passed) else rec
            for oid, rec in ledger.objects.items()}


def advance(state: EpisodeState, runtime: Runtime[RunContext]) -> dict:
    settings = state.settings
    assert settings is not None
    chosen = best_attempt(state.attempts)
    critique = chosen.critique
    assert critique is not None
    accepted = critique.passed or chosen.review == "approved"
    store = artifact_store(settings)
    seen = match_objects(known_looks(state.ledger), perceive(store.get_frame(chosen.last_frame)), 200.0)
    sub = state.current()
    # a segment approved over the critic becomes the new reference, as a best-effort one does
    objects = remembered_objects(state.ledger, seen, {sub.subject, sub.partner}, passed=critique.passed)
    established = [*state.ledger.established, *(sub.postconditions if accepted else [])]
    notes = [*state.ledger.notes] + ([] if accepted else [f"step {sub.index}: {critique.feedback}"])
    if chosen.review == "approved" and not critique.passed:
        notes.append(f"step {sub.index}: a reviewer approved it over the critic ({critique.feedback})")
    ledger = Ledger(objects=objects, established=established, notes=notes,
                    first_frame=state.ledger.first_frame, last_frame=chosen.last_frame)
    from .runtime import thread_id, trace_db

    trace_db(settings).db["sub_actions"].upsert({
        "id": f"{thread_id()}:{state.plan_version}:{sub.index}", "thread_id": thread_id(),
        "plan_version": state.plan_version, "index": sub.index, "verb": sub.verb, "subject": sub.subject,
        "description": sub.description, "postconditions": json.dumps(sub.postconditions),
        "passed": accepted, "tries": len(state.attempts), "segment": chosen.segment}, pk="id", alter=True)
    outcome = Outcome(index=sub.index, passed=accepted, tries=len(state.attempts), segment=chosen.segment,
                      score=round(critique.scores.mean, 4), reviewed=chosen.review == "approved")
    cursor = state.cursor + 1
    nxt = load_plan(store, state.plan_ref).sub_actions[cursor] if cursor < state.plan_size else None
    return {"ledger": ledger, "outcomes": [*state.outcomes, outcome], "cursor": cursor, "attempts": [],
            "sub_action": nxt, "instruction": nxt.prompt if nxt else "",
            "instruction_flags": list(nxt.flags) if nxt else []}
