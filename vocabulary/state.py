"""The episode's state: small, serialisable, references instead of pixels.

What the next step needs lives here (settings, the cursor into the plan, the
current instruction, the attempts at the current sub-action, counters).
Everything that grows with the episode is a content-addressed artifact the
state points at: the whole plan (`plan_ref`) and the episode's memory, the
ledger with its outcomes (`ledger_ref`). Every attempt, with its scores and
evidence, is a typed record in the trace database. So a checkpoint stays the
same size however long the episode is (docs/benchmarks.md, checkpoint size).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..tools.world.scene import ObjectBody
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
    id: str = Field("", description="Stable id (s0, s1, ...): a step keeps it when a replan restates it.")
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
    hidden_at: tuple[float, float] | None = Field(
        None, description="Where the subject was last seen going into its container before others hid it "
        "(table units): the ledger's place for it.")
    evidence: dict[str, float | str] = Field(default_factory=dict)


class Candidate(BaseModel):
    """One of a try's `group_size` samples, until the critic has chosen among them."""

    sample: int
    seed: int
    segment: str
    last_frame: str
    thumbnail: str = ""
    trajectory: str = ""


class Attempt(BaseModel):
    """One try at the current sub-action, as the next steps need it. Its full record
    (conditioning frame, evidence, timings, token usage) is in the trace database."""

    sub_action_index: int
    try_index: int
    plan_version: int
    prompt: str
    seed: int
    segment: str
    """Artifact ref of the frames."""
    last_frame: str
    thumbnail: str = ""
    """Artifact ref of the last frame as a 64 px JPEG; stream events carry the bytes."""
    trajectory: str = ""
    """Artifact ref of the per-step latents and log-probs (safetensors), when recorded."""
    critique: Critique | None = None
    """The verdict, without its evidence (that is in the trace database)."""
    review: Review = ""
    """A person's verdict when the run pauses for review (`RunContext.review`)."""
    sample: int = 0
    """Which of the try's samples this is (the one the critic chose when `group_size` > 1)."""
    candidates: list[Candidate] = Field(default_factory=list)
    """All samples of the try between generate and critique (group_size > 1); emptied once one is chosen."""


def merge_attempts(current: list[Attempt], update: Attempt | list[Attempt]) -> list[Attempt]:
    """The `attempts` reducer: one Attempt replaces the one with its try index (or joins the list),
    so a node writes only the attempt it made or judged; a list replaces them all (`[]` when a new
    sub-action or plan starts). Values may arrive as dicts (a server restoring a checkpoint, a client
    editing state); they are validated here."""
    if isinstance(update, list):
        return [Attempt.model_validate(a) for a in update]
    attempt = Attempt.model_validate(update)
    kept = [a for a in map(Attempt.model_validate, current) if a.try_index != attempt.try_index]
    return sorted([*kept, attempt], key=lambda a: a.try_index)


class ObjectRecord(ObjectBody, BaseModel):
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


class Outcome(BaseModel):
    """Compact record of a finished sub-action."""

    index: int
    passed: bool
    tries: int
    segment: str
    score: float
    reviewed: bool = False
    """A person approved it (`RunContext.review`)."""


class Ledger(BaseModel):
    """The episode's memory, kept as an artifact (`EpisodeState.ledger_ref`): where everything is,
    what has been established, each finished sub-action's outcome, and critic notes."""

    objects: dict[str, ObjectRecord] = Field(default_factory=dict)
    established: list[str] = Field(default_factory=list)
    outcomes: list[Outcome] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    first_frame: str = ""
    """Artifact ref of the start frame, at the run's size."""
    last_frame: str = ""
    """Artifact ref of the last accepted frame: the next segment's conditioning frame."""


class EpisodeInput(BaseModel):
    """What a user gives: a start image and an action (nothing else: an unknown key is refused, named)."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(description="High-level action, e.g. 'put all red objects in the bowl'.")
    image: str = Field(description="Start image: a file path, an http(s) URL, a data:image/...;base64 URL, "
                       "or an artifact ref (sha256:...).")


class EpisodeOutput(BaseModel):
    status: str = ""
    video: str = ""
    summary: str = ""


class EpisodeState(EpisodeInput):
    """`image` becomes the start frame's artifact ref on the first step, so an image sent inline
    (base64) is not copied into every checkpoint. Unlike the input, the state ignores keys it does not
    know (LangGraph hands a node the whole channel map)."""

    model_config = ConfigDict(extra="ignore")

    settings: RunContext | None = None
    """The run's settings, saved on the first step: a resume continues with them."""
    plan_ref: str = ""
    """Artifact ref of the whole `Plan` (JSON)."""
    plan_size: int = 0
    plan_version: int = 0
    cursor: int = 0
    """Index of the plan step being generated."""
    instruction: str = ""
    """The current prompt for the sub-action at `cursor` (rewritten by refine)."""
    instruction_flags: list[str] = Field(default_factory=list)
    """What refine has added to it so far (explicit, complete, still, identity)."""
    attempts: Annotated[list[Attempt], merge_attempts] = Field(default_factory=list)
    """Attempts at the current sub-action only."""
    ledger_ref: str = ""
    """Artifact ref of the episode's `Ledger` (JSON), rewritten when a sub-action finishes."""
    replans: int = 0
    generator_calls: int = 0
    status: Literal["planning", "running", "done", "partial", "budget_exhausted"] = "planning"
    ended_early: str = ""
    """Why the loop stopped before the plan's sub-actions were done (a replan that left nothing to do
    after a failure); finalize reports the episode as not done, with this reason."""
    reason: str = ""
    """Why the episode is not done (empty when it is): the summary's and the CLI's one line."""
    video: str = ""
    summary: str = ""

    def run_settings(self) -> RunContext:
        assert self.settings is not None, "the settings are saved by the first step"
        return self.settings
