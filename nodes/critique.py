"""Reflect: the CriticAgent judges the latest segment against the plan and the episode's memory.

`perception` is the offline critic (`critic.py`); `llm` a VLM over a keyframe
sheet; `ensemble` the VLM with the perception critic's measurements;
`none` accepts every segment unjudged (an ablation: the traces say so, they
do not record a pass). The verdict goes into the state without its evidence;
the trace record keeps everything.
"""

from __future__ import annotations

import time

from langgraph.runtime import Runtime

from ..memory.traces import Judgement
from ..vocabulary.config import RunContext
from ..vocabulary.events import CritiqueEvent
from ..vocabulary.state import (
    Attempt,
    Candidate,
    Critique,
    CritiqueScores,
    EpisodeState,
)
from .context import NodeContext
from .critic import PerceptionCritic
from .ledger import memoryless_ledger

NOT_JUDGED = Critique(
    scores=CritiqueScores(action_completion=1, object_fidelity=1, temporal_consistency=1, physical_plausibility=1,
                          visual_quality=1),
    passed=True, feedback="Accepted without judging: the critic is off.")


def critique(state: EpisodeState, runtime: Runtime[RunContext]) -> dict:
    """Judge every sample of the latest try; the best passing one (else the best scored) goes on."""
    ctx = NodeContext.of(state, runtime)
    attempt = state.attempts[-1]
    candidates = attempt.candidates or [Candidate(sample=attempt.sample, seed=attempt.seed, segment=attempt.segment,
                                                  last_frame=attempt.last_frame, thumbnail=attempt.thumbnail,
                                                  trajectory=attempt.trajectory)]
    judged = [(candidate, _judge(ctx, state, attempt, candidate)) for candidate in candidates]
    chosen, verdict = max(judged, key=lambda cv: (cv[1].passed, cv[1].scores.mean, -cv[0].sample))
    if len(candidates) > 1:
        ctx.traces.record_choice(ctx.attempt_key(attempt, chosen.sample))
    return {"attempts": attempt.model_copy(update={
        "sample": chosen.sample, "seed": chosen.seed, "segment": chosen.segment, "last_frame": chosen.last_frame,
        "thumbnail": chosen.thumbnail, "trajectory": chosen.trajectory, "candidates": [],
        "critique": verdict.model_copy(update={"evidence": {}})})}


def _judge(ctx: NodeContext, state: EpisodeState, attempt: Attempt, candidate: Candidate) -> Critique:
    """One sample's verdict, by the configured critic; recorded in the trace database with its evidence."""
    settings = ctx.settings
    t0 = time.perf_counter()
    usage: dict[str, float | str] = {}
    judged_by = settings.critic
    if settings.critic == "none":
        verdict = NOT_JUDGED
    else:
        step, ledger = ctx.step(state), ctx.ledger(state)
        conditioning = ctx.artifacts.get_frame(ledger.last_frame)
        frames = ctx.artifacts.get_frames(candidate.segment)
        if settings.memory == "off":
            ledger = memoryless_ledger(ledger, conditioning, ctx.reading.perceive)
        perception = None
        if settings.critic in ("perception", "ensemble"):
            perception = PerceptionCritic(ctx.reading).judge(step, frames, conditioning, ledger)
        verdict = perception
        if settings.critic in ("llm", "ensemble"):
            from .llm_agents import LLMCritic

            judged, call = LLMCritic(settings).judge(step, frames, conditioning, ledger, perception)
            usage = call.evidence()
            if judged is None:  # invalid replies or a refusal: the offline critic decides, and says so
                judged = perception or PerceptionCritic(ctx.reading).judge(step, frames, conditioning, ledger)
                judged_by = "perception"
            verdict = judged
    assert verdict is not None
    ctx.emit(CritiqueEvent(sub_action=attempt.sub_action_index, try_index=attempt.try_index, sample=candidate.sample,
                           passed=verdict.passed, failure=verdict.failure, scores=verdict.scores,
                           feedback=verdict.feedback, suggestion=verdict.suggestion))
    key = ctx.attempt_key(attempt, candidate.sample)
    judged_at_all = settings.critic != "none"
    ctx.traces.record_judgement(key, Judgement(
        critic=judged_by, judged=judged_at_all, passed=verdict.passed if judged_at_all else None,
        failure=verdict.failure, scores=verdict.scores.model_dump() if judged_at_all else {},
        feedback=verdict.feedback, suggestion=verdict.suggestion, evidence=verdict.evidence,
        critique_s=round(time.perf_counter() - t0, 4)))
    if usage:
        ctx.traces.add_usage(key, usage)
    return verdict
