"""Finalize: stitch the accepted segments into one video and write the episode summary.

The summary holds only what the seed determines (plan, attempts, scores,
outcomes), never timings or paths, so the same seed gives a byte-identical
file; timings stay in the trace database.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from langgraph.runtime import Runtime

from ..graph.config import RunContext
from ..graph.state import EpisodeState, Plan
from ..tools.media import save_png, write_gif, write_mp4
from .runtime import thread_id, trace_db
from .plan import load_plan
from .runtime import artifact_store

SUMMARY_SETTINGS = ("backbone", "difficulty", "seed", "num_frames", "height", "width", "fps", "max_tries_per_segment",
                    "max_replans", "max_generator_calls")


def stitch(segments: list[np.ndarray], start: np.ndarray) -> np.ndarray:
    """Accepted segments end to end; each later segment's first frame repeats the
    previous last frame, so it is dropped."""
    if not segments:
        return start[None]
    return np.concatenate([segments[0], *[s[1:] for s in segments[1:]]])


def output_dir(settings: RunContext, thread: str) -> Path:
    return Path(settings.out_dir) if settings.out_dir else Path(settings.workspace) / "runs" / thread


def status_of(state: EpisodeState) -> str:
    if state.cursor < state.plan_size:
        return "budget_exhausted"
    return "done" if all(o.passed for o in state.outcomes) else "partial"


def summary_of(state: EpisodeState, plan: Plan, attempts: list[dict], status: str, num_frames: int) -> dict:
    assert state.settings is not None
    return {
        "action": state.action,
        "status": status,
        "settings": {k: getattr(state.settings, k) for k in SUMMARY_SETTINGS},
        "plan": [s.model_dump(include={"index", "verb", "subject", "target", "partner", "description",
                                       "preconditions", "postconditions"}) for s in plan.sub_actions],
        "plan_version": plan.version,
        "replans": state.replans,
        "generator_calls": state.generator_calls,
        "attempts": [{
            "sub_action": a["sub_action_index"], "try": a["try_index"], "plan_version": a["plan_version"],
            "prompt": a["prompt"], "seed": a["seed"], "passed": bool(a.get("passed")), "failure": a.get("failure"),
            "scores": {k: round(float(v), 4) for k, v in (a.get("scores") or {}).items()},
            "feedback": a.get("feedback", ""), "segment": a["segment"],
        } for a in attempts],
        "outcomes": [o.model_dump() for o in state.outcomes],
        "established": state.ledger.established,
        "notes": state.ledger.notes,
        "video_frames": num_frames,
    }


def finalize(state: EpisodeState, runtime: Runtime[RunContext]) -> dict:
    settings = state.settings
    assert settings is not None
    store = artifact_store(settings)
    thread = thread_id()
    video = stitch([store.get_frames(o.segment) for o in state.outcomes], store.get_frame(state.start_frame))
    out = output_dir(settings, thread)
    out.mkdir(parents=True, exist_ok=True)
    fps = settings.fps
    if settings.write_video:
        write_mp4(video, out / "video.mp4", fps=fps)
        write_gif(video, out / "video.gif", fps=fps)
    save_png(video[-1], out / "last_frame.png")
    np.save(out / "frames.npy", video)
    status = status_of(state)
    plan = load_plan(store, state.plan_ref)
    summary = summary_of(state, plan, trace_db(settings).attempts(thread), status, len(video))
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    memory_store = getattr(runtime, "store", None)
    if settings.memory == "reflective" and settings.memory_write and memory_store is not None:
        from ..memory.store import lessons_from_attempts, write_lessons

        shapes = {oid: rec.shape for oid, rec in state.ledger.objects.items()}
        lessons = lessons_from_attempts(trace_db(settings).attempts(thread), shapes)
        write_lessons(memory_store, lessons)
        trace_db(settings).db["lessons"].upsert_all(
            [{"thread_id": thread, **lesson.model_dump()} for lesson in lessons], pk=("thread_id", "text"), alter=True)
    trace_db(settings).record_episode(thread, {"action": state.action, "status": status,
                                               "generator_calls": state.generator_calls, "out_dir": str(out)})
    return {"status": status, "video": str(out / "video.mp4"), "summary": str(out / "summary.json")}
