"""An episode's report, as data: what `spiral report THREAD` shows, read through the typed trace database,
the artifact store and the episode's checkpointed state into the pydantic models below.

The shell renders it (shell/report_page.py, a jinja2 template); segments and
images are already data URIs here, so the page it makes needs no request.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from ..memory.artifacts import ArtifactStore
from ..memory.traces import AttemptRecord
from ..memory.workspace import Workspace
from ..nodes.ledger import words_for
from ..tools.errors import ResumeError
from ..tools.pages import keyframe_strip, png_uri, webm_uri
from ..vocabulary.state import CritiqueScores, EpisodeState, Ledger, Plan
from .session import Session

KEYFRAMES = 4
"""Frames in an attempt's keyframe strip: first, two between, last."""


class WordChange(BaseModel):
    """A run of words in an instruction, as kept, added or removed against the try before."""

    kind: str
    text: str


class AttemptView(BaseModel):
    try_number: int
    sample: int
    group_size: int
    chosen: bool
    seed: int
    prompt: str
    change: list[WordChange]
    """The prompt against the previous try's (empty for a first try)."""
    judged_by: str
    passed: bool | None
    failure: str
    feedback: str
    scores: dict[str, float]
    generate_s: float
    critique_s: float
    review: str
    review_feedback: str
    video: str
    """The segment, a data:video/webm URI."""
    keyframes: str
    """A strip of keyframes, a data:image/png URI."""


class SubActionView(BaseModel):
    number: int
    """1-based, as the terminal prints it."""
    plan_version: int
    description: str
    preconditions: list[str]
    postconditions: list[str]
    outcome: str
    """pass, best-effort, or not reached."""
    attempts: list[AttemptView]


class PlanView(BaseModel):
    version: int
    planner: str
    first_step: int
    """1-based number of the first sub-action this plan (re)wrote."""
    steps: list[str]


class ObjectView(BaseModel):
    id: str
    words: str
    x: float
    y: float
    z: float


class EpisodeReport(BaseModel):
    thread_id: str
    action: str
    status: str
    reason: str
    backbone: str
    generator_calls: int
    replans: int
    start_image: str
    final_video: str
    plans: list[PlanView]
    sub_actions: list[SubActionView]
    ledger: list[ObjectView]
    notes: list[str]


def word_changes(before: str, after: str) -> list[WordChange]:
    """Word-level difference of two instructions (what refine changed)."""
    a, b = before.split(), after.split()
    out: list[WordChange] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(WordChange(kind="same", text=" ".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(WordChange(kind="removed", text=" ".join(a[i1:i2])))
        if j2 > j1:
            out.append(WordChange(kind="added", text=" ".join(b[j1:j2])))
    return out


def finished_state(workspace: str | Path, thread_id: str) -> EpisodeState:
    """The thread's last state from the workspace's checkpoints; a clear error unless it has finished."""
    with Session(str(workspace)) as session:
        state = session.state(thread_id)
    if state is None:
        raise ResumeError(f"no episode {thread_id!r} in {workspace}; `spiral traces ls` lists them")
    if not state.summary:
        raise ResumeError(f"episode {thread_id!r} has not finished; finish it with `spiral resume {thread_id}`")
    return state


def build_report(workspace: str | Path, thread_id: str, state: EpisodeState | None = None) -> EpisodeReport:
    """Everything the page shows, read through the trace DB, the artifact store and the thread's state
    (from the workspace's checkpoints unless given: a LangGraph server keeps its own)."""
    workspace = Path(workspace)
    space = Workspace.of(workspace)
    with space.reading_traces() as traces:
        if traces.episode(thread_id) is None:
            raise ResumeError(f"no episode {thread_id!r} in {workspace}; `spiral traces ls` lists them")
        plan_records, attempts = traces.plans(thread_id), traces.attempts(thread_id)
    store = space.artifacts
    state = state or finished_state(workspace, thread_id)
    summary = json.loads(Path(state.summary).read_text())
    plans = {r.version: (r, store.get_model(r.plan, Plan)) for r in plan_records}
    outcomes = {o["index"]: o for o in summary["outcomes"]}
    views: list[SubActionView] = []
    for (version, index), group in _grouped(attempts).items():
        plan = plans[version][1]
        step = plan.sub_actions[index]
        outcome = outcomes.get(index)
        won = outcome is not None and any(a.segment == outcome["segment"] for a in group)
        views.append(SubActionView(
            number=index + 1, plan_version=version, description=step.description, preconditions=step.preconditions,
            postconditions=step.postconditions,
            outcome=("pass" if outcome["passed"] else "best-effort") if won and outcome else "not accepted",
            attempts=_attempt_views(group, store)))
    ledger = store.get_model(state.ledger_ref, Ledger)
    frames = np.load(Path(state.summary).parent / "frames.npy")
    return EpisodeReport(
        thread_id=thread_id, action=summary["action"], status=summary["status"], reason=summary.get("reason", ""),
        backbone=summary["settings"]["backbone"], generator_calls=summary["generator_calls"],
        replans=summary["replans"], start_image=png_uri(store.get_frame(ledger.first_frame)),
        final_video=webm_uri(frames, summary["settings"]["fps"]),
        plans=[PlanView(version=v, planner=r.planner, first_step=_first_step(attempts, v) + 1,
                        steps=[s.description for s in p.sub_actions]) for v, (r, p) in sorted(plans.items())],
        sub_actions=views,
        ledger=[ObjectView(id=o.id, words=words_for(ledger, o.id), x=round(o.x, 1), y=round(o.y, 1), z=round(o.z, 1))
                for o in ledger.objects.values()],
        notes=list(ledger.notes))


def _grouped(attempts: list[AttemptRecord]) -> dict[tuple[int, int], list[AttemptRecord]]:
    out: dict[tuple[int, int], list[AttemptRecord]] = {}
    for a in sorted(attempts, key=lambda a: (a.plan_version, a.sub_action_index, a.try_index, a.sample)):
        out.setdefault((a.plan_version, a.sub_action_index), []).append(a)
    return out


def _attempt_views(group: list[AttemptRecord], store: ArtifactStore) -> list[AttemptView]:
    views, previous = [], ""
    for a in group:
        frames = store.get_frames(a.segment)
        views.append(AttemptView(
            try_number=a.try_index + 1, sample=a.sample + 1, group_size=a.group_size, chosen=a.chosen, seed=a.seed,
            prompt=a.prompt, change=word_changes(previous, a.prompt) if previous and a.try_index > 0 else [],
            judged_by=a.critic or "nobody", passed=a.passed, failure=a.failure or "", feedback=a.feedback,
            scores=_in_order(a.scores), generate_s=round(a.generate_s, 2),
            critique_s=round(a.critique_s, 2), review=a.review, review_feedback=a.review_feedback,
            video=webm_uri(frames), keyframes=png_uri(keyframe_strip(frames, KEYFRAMES))))
        if a.chosen:
            previous = a.prompt
    return views


def _in_order(scores: dict[str, float]) -> dict[str, float]:
    """The critic's scores in CritiqueScores' order (completion first), then any others."""
    names = [n for n in CritiqueScores.model_fields if n in scores] + sorted(set(scores) - set(CritiqueScores.model_fields))
    return {n: round(float(scores[n]), 3) for n in names}


def _first_step(attempts: list[AttemptRecord], version: int) -> int:
    """Index of the first sub-action a plan version was used for (where a replan took over)."""
    return min((a.sub_action_index for a in attempts if a.plan_version == version), default=0)
