"""Refine (inner loop): turn a critique into a better instruction for the same sub-action.

The rule refiner adds the phrase each failure calls for and keeps what earlier
refinements added; the seed changes with the try index (see generate).
"""

from __future__ import annotations

from langgraph.runtime import Runtime

from ..vocabulary.config import RunContext
from ..vocabulary.state import Critique, EpisodeState, ObjectRecord, SubAction
from .context import NodeContext
from .planner import template_key
from .prompts.generator import write_instruction
from .recall import recalled_flags

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
        key = template_key(sub)
        return write_instruction(key, subject, sub.target_desc, sub.partner_desc, new_flags), new_flags


def refine(state: EpisodeState, runtime: Runtime[RunContext]) -> dict:
    ctx = NodeContext.of(state, runtime)
    settings = ctx.settings
    last = state.attempts[-1]
    assert last.critique is not None
    if settings.refine == "reseed":  # the next try differs by its seed alone (generate derives it from the try)
        return {"instruction": state.instruction, "instruction_flags": list(state.instruction_flags)}
    step, ledger = ctx.step(state), ctx.ledger(state)
    remembered = state.instruction_flags if settings.memory != "off" else []
    if ctx.lesson_store is not None:
        remembered = list(dict.fromkeys([*remembered, *recalled_flags(ctx.lesson_store, step, ledger)]))
    text, flags = RuleRefiner().revise(step, last.critique, remembered, ledger.objects.get(step.subject))
    if settings.planner == "llm":
        from .llm_agents import LLMRefiner

        rewritten, call = LLMRefiner(settings).revise(step, last.critique, state.instruction)
        ctx.traces.add_usage(ctx.attempt_key(last), call.evidence())
        if rewritten is not None:
            text = rewritten
    return {"instruction": text, "instruction_flags": flags}
