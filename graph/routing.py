"""The conditional edges: where the loop goes after plan, critique and advance."""

from __future__ import annotations

from typing import Literal

from ..vocabulary.state import EpisodeState


def after_plan(state: EpisodeState) -> Literal["generate", "finalize"]:
    return "generate" if state.cursor < state.plan_size else "finalize"


def after_critique(state: EpisodeState) -> Literal["advance", "refine", "plan", "review"]:
    """Pass → advance. Fail → refine while the sub-action has tries left, then replan while
    the episode has replans left, then accept the best attempt and move on. With review on,
    every acceptance goes past a person first."""
    route = _after_verdict(state)
    return "review" if route == "advance" and state.run_settings().review else route


def after_review(state: EpisodeState) -> Literal["advance", "refine"]:
    """Approved → advance. Rejected → generate again from the reviewer's feedback, unless the
    generator-call budget is spent (then the best attempt a person did not reject is accepted)."""
    settings = state.run_settings()
    if state.attempts[-1].review == "approved" or state.generator_calls >= settings.max_generator_calls:
        return "advance"
    return "refine"


def _after_verdict(state: EpisodeState) -> Literal["advance", "refine", "plan"]:
    settings = state.run_settings()
    critique = state.attempts[-1].critique
    assert critique is not None
    if critique.passed or state.generator_calls >= settings.max_generator_calls:
        return "advance"
    can_replan = state.replans < settings.max_replans
    if critique.replan and can_replan:
        return "plan"
    if len(state.attempts) < settings.max_tries_per_segment:
        return "refine"
    return "plan" if can_replan else "advance"


def after_advance(state: EpisodeState) -> Literal["generate", "finalize"]:
    settings = state.run_settings()
    if state.cursor >= state.plan_size or state.generator_calls >= settings.max_generator_calls:
        return "finalize"
    return "generate"
