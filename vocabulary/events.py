"""What a watching client sees besides node updates: custom stream events, and the
review interrupt's question and answer.

Custom events go out on LangGraph's `custom` stream mode (`stream_mode=["updates",
"custom"]`), one JSON object each, told apart by `event`. The review interrupt
asks with a `ReviewRequest` and takes a `ReviewDecision` (or the shorthand
strings "approve" / "reject") through `Command(resume=...)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .state import Attempt, CritiqueScores, FailureKind, Plan


class GeneratorProgress(BaseModel):
    """Denoising step `step` of `steps` of one segment (the simulator reports a single step)."""

    event: Literal["generator_progress"] = "generator_progress"
    sub_action: int
    try_index: int
    step: int
    steps: int
    backbone: str


class SegmentReady(BaseModel):
    event: Literal["segment"] = "segment"
    sub_action: int
    try_index: int
    segment: str
    """Artifact ref of the frames."""
    thumbnail: str
    """The last frame as a small JPEG data URL."""
    prompt: str
    seed: int
    sample: int = 0
    """Which of the try's `group_size` samples."""


class CritiqueEvent(BaseModel):
    event: Literal["critique"] = "critique"
    sub_action: int
    try_index: int
    sample: int = 0
    passed: bool
    failure: FailureKind | None
    scores: CritiqueScores
    feedback: str
    suggestion: str


class ReviewRequest(BaseModel):
    """The interrupt's payload: the segment about to be accepted and what the critic said. `id` names this
    question: an answer that names another one (a second click, a second client) answers nothing."""

    question: str = ("Accept this segment? Resume with {'review_id': ID, 'decision': 'approve'}, or "
                     "{'review_id': ID, 'decision': 'reject', 'feedback': '...'}.")
    id: str = Field("", description="This question's id: the answer names it as `review_id`.")
    sub_action: int
    description: str
    try_index: int
    segment: str
    thumbnail: str
    critic_passed: bool
    critic_feedback: str
    error: str = ""
    """Why the previous answer was not understood, when it was not."""


class ReviewDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    feedback: str = Field("", description="With reject: what is wrong, used to rewrite the instruction.")
    review_id: str = Field("", description="The id of the question this answers (a server requires it; in-process "
                           "an answer without one answers the question pending).")

    @classmethod
    def parse(cls, answer: object) -> ReviewDecision:
        """From `Command(resume=...)`: a ReviewDecision dict, or the strings 'approve' / 'reject[: feedback]'."""
        if isinstance(answer, cls):
            return answer
        if isinstance(answer, str):
            word, _, rest = answer.partition(":")
            word = word.strip().lower()
            if word in ("approve", "approved", "accept", "yes", "y"):
                return cls(decision="approve")
            if word in ("reject", "rejected", "no", "n"):
                return cls(decision="reject", feedback=rest.strip())
            raise ValueError(f"answer {answer!r} is neither 'approve' nor 'reject: feedback'")
        if isinstance(answer, dict):
            try:
                return cls.model_validate(answer)
            except ValidationError as exc:
                raise ValueError(f"answer {answer!r} is not a review decision: {exc.errors()[0]['msg']}") from None
        raise ValueError(f"answer of type {type(answer).__name__} is not a review decision")


# -- what the session driver tells an observer (graph/session.py) --------------------------------------
class EpisodeStarted(BaseModel):
    """The run passed preflight and its thread exists from now on (resume it by this id)."""

    thread_id: str
    workspace: str


class PlanMade(BaseModel):
    plan: Plan
    cursor: int
    """Steps before it were already accepted (a replan restates only the rest)."""


class AttemptJudged(BaseModel):
    attempt: Attempt


class InstructionRefined(BaseModel):
    instruction: str


class AttemptReviewed(BaseModel):
    attempt: Attempt


class EpisodeFinished(BaseModel):
    status: str
    video: str
    summary: str


SessionEvent = (EpisodeStarted | PlanMade | AttemptJudged | InstructionRefined | AttemptReviewed | EpisodeFinished | GeneratorProgress
                | SegmentReady | CritiqueEvent)
Observer = Callable[[SessionEvent], None]
"""Told every session event as it happens (graph/session.py)."""
