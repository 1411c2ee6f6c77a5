"""Finalize: stitch the accepted segments into one video and write the episode summary.

The summary holds only what the seed determines (plan, attempts, scores,
outcomes), never timings or paths, so the same seed gives a byte-identical
file; timings stay in the trace database.
"""

from __future__ import annotations

import json
from pathlib import Path

from langgraph.runtime import Runtime

from ..graph.config import RunContext
from ..graph.state import EpisodeState, Ledger, Plan
from ..memory.store import lessons_from_attempts, write_lessons
from ..memory.traces import AttemptRecord
from ..memory.workspace import run_folder
from ..tools.media import save_npy, save_png, stitch, write_gif, write_mp4
from .ingest import episode_record
from .context import NodeContext

SUMMARY_SETTINGS = ("backbone", "difficulty", "seed", "num_frames", "height", "width", "fps", "max_tries_per_segment",
                    "max_replans", "max_generator_calls")


def output_dir(settings: RunContext, thread: str) -> Path:
    return Path(settings.out_dir) if settings.out_dir else run_folder(settings.workspace, thread)


def status_of(state: EpisodeState, ledger: Ledger) -> str:
    if state.cursor < state.plan_size:
        return "budget_exhausted"
    return "done" if all(o.passed for o in ledger.outcomes) else "partial"


def summary_of(state: EpisodeState, plan: Plan, ledger: Ledger, attempts: list[AttemptRecord], status: str,
               num_frames: int) -> dict:
    settings = state.run_settings()
    return {
        "action": state.action,
        "status": status,
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
    status = status_of(state, ledger)
    attempts = [a for a in ctx.traces.attempts(ctx.thread_id) if a.chosen]  # a group's other samples: traces only
    summary = summary_of(state, ctx.plan(state), ledger, attempts, status, len(video))
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    if ctx.lesson_store is not None and settings.memory_write:
        shapes = {oid: rec.shape for oid, rec in ledger.objects.items()}
        lessons = lessons_from_attempts(attempts, shapes)
        write_lessons(ctx.lesson_store, lessons)
        ctx.traces.record_lessons(ctx.thread_id, lessons)
    ctx.traces.record_episode(episode_record(ctx.thread_id, state.action, settings).model_copy(update={
        "status": status, "generator_calls": state.generator_calls, "replans": state.replans, "out_dir": str(out)}))
    ctx.artifacts.drop_cache()  # the episode is over: its decoded frames need not stay in memory
    return {"status": status, "video": str(out / "video.mp4"), "summary": str(out / "summary.json")}
