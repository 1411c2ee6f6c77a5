"""Review (optional): a person approves a segment before it is accepted, or rejects it with feedback.

With `RunContext.review` on, the loop pauses here (a LangGraph interrupt) every
time it is about to accept a segment. The run resumes with
`Command(resume="approve")` or `Command(resume={"decision": "reject",
"feedback": "the ball stopped on the rim"})`. A rejection replaces the critic's
verdict with the reviewer's, so refine rewrites the instruction from it and the
segment is generated again (the generator-call budget still bounds the loop).
An answer that is neither asks again, saying why.
"""

from __future__ import annotations

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from ..memory.traces import Judgement
from ..tools.media import data_url
from ..vocabulary.config import RunContext
from ..vocabulary.events import ReviewDecision, ReviewRequest
from ..vocabulary.state import Critique, EpisodeState
from .context import NodeContext


def ask(request: ReviewRequest) -> ReviewDecision:
    """Interrupt until the answer parses and answers this question; each retry is a new interrupt that says
    what was wrong. An answer naming another question (a second click, a second client) answers nothing."""
    answer = interrupt(request.model_dump())
    while True:
        try:
            decision = ReviewDecision.parse(answer)
            if decision.review_id and decision.review_id != request.id:
                raise ValueError(f"that answer is for review {decision.review_id}, which is no longer pending; "
                                 f"the question now is review {request.id}")
            return decision
        except ValueError as exc:
            answer = interrupt(request.model_copy(update={"error": str(exc)}).model_dump())


def rejected(critique: Critique, feedback: str) -> Critique:
    """The reviewer's verdict in the critic's shape: refine reads it like any other."""
    said = feedback or "the reviewer rejected the segment"
    return critique.model_copy(update={"passed": False, "failure": "rejected", "feedback": f"reviewer: {said}",
                                       "suggestion": said, "replan": False})


def review(state: EpisodeState, runtime: Runtime[RunContext]) -> dict:
    ctx = NodeContext.of(state, runtime)
    last = state.attempts[-1]
    assert last.critique is not None
    step = ctx.step(state)
    thumbnail = data_url(ctx.artifacts.get_bytes(last.thumbnail), "image/jpeg") if last.thumbnail else ""
    review_id = f"{state.plan_version}.{state.cursor}.{last.try_index}"
    decision = ask(ReviewRequest(id=review_id, sub_action=step.index, description=step.description,
                                 try_index=last.try_index,
                                 segment=last.segment, thumbnail=thumbnail, critic_passed=last.critique.passed,
                                 critic_feedback=last.critique.feedback))
    if decision.decision == "approve":
        reviewed = last.model_copy(update={"review": "approved"})
    else:
        reviewed = last.model_copy(update={"review": "rejected", "critique": rejected(last.critique, decision.feedback)})
    # the person's verdict is the attempt's label from now on (lessons, preference pairs); the critic's stays beside it
    verdict = reviewed.critique
    assert verdict is not None
    ctx.traces.record_review(
        ctx.attempt_key(last), decision.decision,
        decision.feedback, Judgement(critic="person", judged=True, passed=decision.decision == "approve",
                                     failure=verdict.failure, scores=verdict.scores.model_dump(),
                                     feedback=verdict.feedback, suggestion=verdict.suggestion))
    return {"attempts": reviewed}
