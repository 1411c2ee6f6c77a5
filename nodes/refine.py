"""Refine (inner loop): turn a critique into a better instruction for the same sub-action.

The rule refiner adds the phrase each failure calls for and keeps what earlier
refinements added; the seed changes with the try index (see generate).
"""

from __future__ import annotations

from langgraph.runtime import Runtime

from ..graph.config import RunContext
from ..graph.state import Critique, EpisodeState, ObjectRecord, SubAction
from .plan import _template_key
from .prompts.generator import write_instruction

FLAGS_FOR = {
    "incomplete": ("explicit", "complete"),
    "no_motion": ("explicit", "complete"),
    "wrong_object": ("identity",),
    "drift": ("still",),
    "discontinuity": ("still",),
    "missing_object": ("explicit",),
    "rejected": ("explicit", "complete", "still"),  # a reviewer's words are not parsed: strengthen all round
}


class RuleRefiner:
    def revise(self, sub: SubAction, critique: Critique, flags: list[str],
               subject_record: ObjectRecord | None = None) -> tuple[str, list[str]]:
        """The instruction with the phrases this failure calls for added to the earlier ones."""
        new_flags = list(dict.fromkeys([*flags, *FLAGS_FOR.get(critique.failure or "", ())]))
        subject = sub.subject_desc
        rec = subject_record
        if "identity" in new_flags and rec is not None and rec.shape != "block":
            subject = f"{rec.size} {rec.color} {rec.shape}"  # name it by size too
        key = _template_key(sub)
        return write_instruction(key, subject, sub.target_desc, sub.partner_desc, new_flags), new_flags


def refine(state: EpisodeState, runtime: Runtime[RunContext]) -> dict:
    last = state.attempts[-1]
    assert last.critique is not None
    sub = state.current()
    settings = state.settings
    remembered = state.instruction_flags if settings is None or settings.memory != "off" else []
    memory_store = getattr(runtime, "store", None)
    if settings is not None and settings.memory == "reflective" and memory_store is not None:
        from ..memory.store import recall_flags

        rec = state.ledger.objects.get(sub.subject)
        remembered = list(dict.fromkeys([*remembered, *recall_flags(memory_store, sub.verb, rec.shape if rec else "")]))
    text, flags = RuleRefiner().revise(sub, last.critique, remembered, state.ledger.objects.get(sub.subject))
    if settings is not None and settings.planner == "llm":
        from .llm_agents import LLMRefiner
        from .runtime import thread_id, trace_db

        rewritten, call = LLMRefiner(settings).revise(sub, last.critique, state.instruction)
        trace_db(settings).record_attempt(thread_id(), {
            "plan_version": last.plan_version, "sub_action_index": last.sub_action_index,
            "try_index": last.try_index, **call.evidence()})
        if rewritten is not None:
            text = rewritten
    return {"instruction": text, "instruction_flags": flags}
