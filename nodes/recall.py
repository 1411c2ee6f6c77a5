"""Reflective memory in the loop: phrasing that fixed a kind of sub-action before starts it now.

Lessons are written at the end of an episode (finalize) and recalled here by
semantic search (memory/store.py): when planning, every sub-action starts with
the flags that fixed its verb on its kind of object; when refining, they join
the flags the critique calls for.
"""

from __future__ import annotations

from typing import Any

from ..memory.store import recall_flags
from ..vocabulary.state import Ledger, Plan, SubAction
from .planner import template_key
from .prompts.generator import write_instruction


def shape_of(step: SubAction, ledger: Ledger) -> str:
    record = ledger.objects.get(step.subject)
    return record.shape if record is not None else "object"


def apply_lessons(plan: Plan, store: Any, ledger: Ledger) -> tuple[Plan, int]:
    """Start each sub-action with the phrasing that fixed its verb on its kind of object before."""
    steps, recalled = [], 0
    for step in plan.sub_actions:
        flags = recall_flags(store, step.verb, shape_of(step, ledger))
        if flags:
            recalled += 1
            step = step.model_copy(update={"flags": flags, "prompt": write_instruction(
                template_key(step), step.subject_desc, step.target_desc, step.partner_desc, flags)})
        steps.append(step)
    return plan.model_copy(update={"sub_actions": steps}), recalled


def recalled_flags(store: Any, step: SubAction, ledger: Ledger) -> list[str]:
    """What fixed this kind of sub-action before (empty without a store)."""
    return recall_flags(store, step.verb, shape_of(step, ledger)) if store is not None else []
