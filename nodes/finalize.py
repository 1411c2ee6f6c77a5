"""Finalize: stitch the accepted segments into one video and write the episode summary.

The summary holds only what the seed determines (plan, attempts, scores,
outcomes), never timings or paths, so the same seed gives a byte-identical
file; timings stay in the trace database.
"""

from __future__ import annotations

import json
from pathlib import Path

from langgraph.runtime import Runtime

from ..memory.folders import run_folder
from ..memory.store import lessons_from_attempts, write_lessons
from ..memory.traces import AttemptRecord
from ..tools.media import save_npy, save_png, stitch, write_gif, write_mp4
from ..tools.predicates import Predicate, evaluate
from ..vocabulary.config import RunContext
from ..vocabulary.state import EpisodeState, Ledger, Plan
from .context import NodeContext
from .ingest import episode_record

SUMMARY_SETTINGS = ("backbone", "difficulty", "seed", "num_frames", "height", "width", "fps", "max_tries_per_segment",
                    "max_replans", "max_generator_calls")


def output_dir(settings: RunContext, thread: str) -> Path:
    return Path(settings.out_dir) if settings.out_dir else run_folder(settings.workspace, thread)


def goal_predicates(plan: Plan) -> list[str]:
    """What must hold at the end: each sub-action's postconditions, unless a later sub-action moves one
    of the objects they name again (a swap parks an object on the way; only where it ends counts)."""
    goal = []
    for i, step in enumerate(plan.sub_actions):
        later_movers = {m for s in plan.sub_actions[i + 1:] for m in (s.subject, s.partner) if m}
        goal += [p for p in step.postconditions if not set(Predicate.parse(p).subjects) & later_movers]
    return list(dict.fromkeys(goal))


def status_of(state: EpisodeState, plan: Plan, ledger: Ledger) -> tuple[str, str]:
    """The episode's status and, unless it is done, why: done means every sub-action passed and the
    goal holds where the episode's memory puts each object at the end (for the objects it knows: an image
    outside the tabletop world has none, and there the critic's passes are all there is)."""
    steps = plan.sub_actions
    if state.cursor < state.plan_size:
        return "budget_exhausted", (f"the budget of {state.run_settings().max_generator_calls} generator calls ran "
                                    f"out at sub-action {state.cursor + 1} of {len(steps)}")
    if state.ended_early:
        return "partial", state.ended_early
    failed = [o for o in ledger.outcomes if not o.passed]
    if failed:
        step = steps[failed[0].index] if failed[0].index < len(steps) else None
        what = f" ({step.description})" if step else ""
        return "partial", (f"{len(failed)} of {len(ledger.outcomes)} sub-actions were accepted without passing "
                           f"the critic, the first sub-action {failed[0].index + 1}{what}")
    checkable = [p for p in goal_predicates(plan) if set(Predicate.parse(p).subjects) <= set(ledger.objects)]
    unmet = [p for p in checkable if not evaluate(Predicate.parse(p), ledger.objects)]
    if unmet:
        return "partial", f"the goal does not hold at the end: {', '.join(unmet)}"
    return "done", ""


def summary_of(state: EpisodeState, plan: Plan, ledger: Ledger, attempts: list[AttemptRecord], status: str,
               num_frames: int, reason: str = "") -> dict:
    settings = state.run_settings()
    return {
        "action": state.action,
        "status": status,
        "reason": reason,
        "settings": {k: getattr(settings, k) for k in SUMMARY_SETTINGS},
        "plan": [s.model_dump(include={"index", "verb", "subject", "target", "partner", "description",
                                       "preconditions", "postconditions"}) for s in plan.sub_actions],
        "plan_version": plan.version,
        "replans": state.replans,
        "generator_calls": state.generator_calls,
        "attempts": [{
            "sub_action": a.sub_action_index, "try": a.try_index, "plan_version": a.plan_version,
            "prompt": a.prompt, "seed": a.seed, "judged": a.judged, "passed": a.passed, "failure": a.failure,
            "scores": {k: round(float(v), 4) for k, v in a.scores.items()}, "feedback": a.feedback,
            "segment": a.segment,
        } for a in attempts],
        "outcomes": [o.model_dump() for o in ledger.outcomes],
        "established": ledger.established,
        "notes": ledger.notes,
        "video_frames": num_frames,
    }


def finalize(state: EpisodeState, runtime: Runtime[RunContext]) -> dict:
    ctx = NodeContext.of(state, runtime)
    settings, store = ctx.settings, ctx.artifacts
    ledger = ctx.ledger(state)
    video = stitch([store.get_frames(o.segment) for o in ledger.outcomes], store.get_frame(ledger.first_frame))
    out = output_dir(settings, ctx.thread_id)
    out.mkdir(parents=True, exist_ok=True)
    if settings.write_video:
        write_mp4(video, out / "video.mp4", fps=settings.fps)
        write_gif(video, out / "video.gif", fps=settings.fps)
    save_png(video[-1], out / "last_frame.png")
    save_npy(video, out / "frames.npy")
    status, reason = status_of(state, ctx.plan(state), ledger)
    attempts = [a for a in ctx.traces.attempts(ctx.thread_id) if a.chosen]  # a group's other samples: traces only
    summary = summary_of(state, ctx.plan(state), ledger, attempts, status, len(video), reason)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    if ctx.lesson_store is not None and settings.memory_write:
        shapes = {oid: rec.shape for oid, rec in ledger.objects.items()}
        lessons = lessons_from_attempts(attempts, shapes)
        write_lessons(ctx.lesson_store, lessons)
        ctx.traces.record_lessons(ctx.thread_id, lessons)
    ctx.traces.record_episode(episode_record(ctx.thread_id, state.action, settings).model_copy(update={
        "status": status, "generator_calls": state.generator_calls, "replans": state.replans, "out_dir": str(out)}))
    ctx.artifacts.drop_cache()  # the episode is over: its decoded frames need not stay in memory
    return {"status": status, "reason": reason, "video": str(out / "video.mp4"), "summary": str(out / "summary.json")}
