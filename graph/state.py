"""The episode's state: small, serialisable, references instead of pixels.

What the next step needs lives here (the current sub-action and its
attempts, compact outcomes, the world-state ledger, counters); the whole plan
is a content-addressed artifact (`plan_ref`) and the full history of attempts
lives in the trace database and in the checkpoint history. So a checkpoint
stays about the same size however long the episode is.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from .config import RunContext

Verb = Literal["put_in", "stack", "move_to", "swap"]
CriticFailure = Literal["incomplete", "wrong_object", "no_motion", "drift", "discontinuity", "missing_object"]
"""What a CriticAgent can find wrong with a segment."""
FailureKind = CriticFailure | Literal["rejected"]
"""A critic's finding, or `rejected`: a person rejected the segment in review."""
Review = Literal["", "approved", "rejected"]


class SubAction(BaseModel):
    """One object-centric step of the plan."""

    index: int
    verb: Verb
    subject: str = Field(description="Object id, e.g. red_ball.")
    target: str | None = Field(None, description="Container/object id, or a place word (left, right, ...).")
    partner: str | None = Field(None, description="Second object of a swap.")
    subject_desc: str = Field(description="The subject in words, e.g. 'small red ball'.")
    target_desc: str = Field("", description="The target in words, e.g. 'white bowl', 'left edge'.")
    partner_desc: str = ""
    description: str = Field(description="The step in words, for people and LLM agents.")
    prompt: str = Field(description="Instruction sent to the video generator.")
    preconditions: list[str] = Field(default_factory=list)
    postconditions: list[str] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)
    """Phrasing the prompt starts with (from reflective memory)."""


class Plan(BaseModel):
    goal: str
    sub_actions: list[SubAction]
    version: int = 0
    """Bumped by every replan."""


class CritiqueScores(BaseModel):
    """Per-dimension scores in [0, 1]."""

    action_completion: float
    object_fidelity: float
    temporal_consistency: float
    physical_plausibility: float
    visual_quality: float

    @property
    def mean(self) -> float:
        vals = self.model_dump().values()
        return sum(vals) / len(vals)


class Critique(BaseModel):
    scores: CritiqueScores
    passed: bool
    failure: FailureKind | None = None
    feedback: str = Field(description="What went wrong, in words.")
    suggestion: str = Field("", description="How to fix the instruction.")
    replan: bool = Field(False, description="The sub-action cannot succeed from this state: replan.")
    evidence: dict[str, float | str] = Field(default_factory=dict)


class Attempt(BaseModel):
    sub_action_index: int
    try_index: int
    plan_version: int
    prompt: str
    seed: int
    segment: str
    """Artifact ref of the frames."""
    last_frame: str
    trajectory: str = ""
    """Artifact ref of the per-step latents and log-probs (safetensors), when recorded."""
    critique: Critique | None = None
    thumbnail: str = ""
    """The segment's last frame as a 64 px JPEG data URL (about 2 kB), for Studio and stream
    clients. Attempts live in state only for the current sub-action, so thumbnails do not make
    checkpoints grow with the episode (docs/benchmarks.md, checkpoint size)."""
    review: Review = ""
    """A person's verdict when the run pauses for review (`RunContext.review`)."""


class ObjectRecord(BaseModel):
    """What the episode knows about one object (from accepted segments)."""

    id: str
    shape: str
    color: str
    size: str
    x: float
    y: float
    z: float = 0.0
    start_rgb: tuple[float, float, float]
    """Its colour in the start image: drift is judged against the start, not the last segment."""


class Ledger(BaseModel):
    """World-state memory: where everything is, what has been established, critic notes."""

    objects: dict[str, ObjectRecord] = Field(default_factory=dict)
    established: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    first_frame: str = ""
    last_frame: str = ""


class Outcome(BaseModel):
    """Compact record of a finished sub-action."""

    index: int
    passed: bool
    tries: int
    segment: str
    score: float
    reviewed: bool = False
    """A person approved it (`RunContext.review`)."""


class EpisodeInput(BaseModel):
    """What a user gives: a start image and an action."""

    action: str = Field(description="High-level action, e.g. 'put all red objects in the bowl'.")
    image: str = Field(description="Start image: a file path, an http(s) URL, a data:image/...;base64 URL, "
                       "or an artifact ref (sha256:...).")


class EpisodeOutput(BaseModel):
    status: str = ""
    video: str = ""
    summary: str = ""


class EpisodeState(EpisodeInput):
    settings: RunContext | None = None
    start_frame: str = ""
    plan_ref: str = ""
    """Artifact ref of the whole `Plan` (JSON)."""
    plan_size: int = 0
    plan_version: int = 0
    sub_action: SubAction | None = None
    """The plan's step at `cursor`, the one being generated."""
    cursor: int = 0
    instruction: str = ""
    """The current prompt for the sub-action at `cursor` (rewritten by refine)."""
    instruction_flags: list[str] = Field(default_factory=list)
    """What refine has added to it so far (explicit, complete, still, identity)."""
    attempts: list[Attempt] = Field(default_factory=list)
    """Attempts at the current sub-action only."""
    outcomes: list[Outcome] = Field(default_factory=list)
    ledger: Ledger = Field(default_factory=Ledger)
    replans: int = 0
    generator_calls: int = 0
    status: Literal["planning", "running", "done", "partial", "budget_exhausted"] = "planning"
    video: str = ""
    summary: str = ""

    def current(self) -> SubAction:
        assert self.sub_action is not None, "no current sub-action"
        return self.sub_action
