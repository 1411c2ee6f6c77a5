"""The loop on a learned model: `tabletop-tiny` on held-out ActWM-Sim tasks, scored by the independent judge.

Methods (same model, same seeds; the test split was never used for training):
* `open-loop`  — the whole action as one prompt, one segment.
* `best-of-n`  — open-loop n times, n = SPIRAL's generator calls on that task and seed
  (compute-matched); the perception critic picks one against the planner's post-conditions.
* `decompose`  — the plan's sub-actions, each generated once (`--critic none`).
* `reseed`     — the loop with the critic, a failed try redone with a new seed only (`--refine reseed`).
* `spiral`     — the full loop: critique, rewording, new seeds, replanning.

Every episode's last frame is judged against the ground-truth executor's
reference end state (bench/judge.py); every judged attempt of the loop is
judged too, against the executor's outcome from where that segment started,
for the critic's precision and recall. Results go to a JSONL file that a rerun
continues.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
from pydantic import BaseModel
from tqdm import tqdm

from ..graph.session import Session
from ..memory.workspace import Workspace
from ..nodes.reading import run_reading
from ..tools.media import save_png
from ..tools.video import SegmentRequest, load_generator
from ..tools.world.render import render_scene
from ..vocabulary.config import RunContext
from ..vocabulary.state import Ledger, Plan
from .episodes import best_by_critic, episode_thread
from .judge import judge_frame, judge_segment, ledger_looks, reference_after
from .tasks import Task, build_suite

BACKBONE = "tabletop-tiny"
METHODS = ("open-loop", "best-of-n", "decompose", "reseed", "spiral")
LOOP_VARIANTS = {"decompose": {"critic": "none"}, "reseed": {"refine": "reseed"}, "spiral": {}}


class LearnedResult(BaseModel):
    task_id: str
    category: str
    horizon: int
    seed: int
    method: str
    model: str
    success: bool
    pixel_mae: float
    psnr: float
    generator_calls: int
    wall_s: float
    generator_s: float = 0.0
    """The generator's own seconds within `wall_s` (what the loop adds is the rest); 0 in rows from before it
    was recorded."""
    status: str = ""
    critic_tp: int = 0
    critic_fp: int = 0
    critic_fn: int = 0
    critic_tn: int = 0
    first_segment_success: bool | None = None
    """The judge's verdict on the first segment the loop made (single-segment action completion)."""


def _seed(*parts: object) -> int:
    return zlib.crc32(":".join(map(str, parts)).encode()) & 0x7FFFFFFF


def context(seed: int, model: str = "", lora: str = "", **variant: object) -> RunContext:
    from ..tools.video.tabletop import NATIVE_FRAMES, NATIVE_SIDE

    return RunContext(backbone=BACKBONE, model=model, lora=lora, seed=seed, num_frames=NATIVE_FRAMES,
                      height=NATIVE_SIDE, width=NATIVE_SIDE, write_video=False, **variant)  # type: ignore[arg-type]


def run_open_loop(task: Task, seed: int, n: int, ctx: RunContext, keep: dict | None = None,
                  method: str = "open-loop") -> LearnedResult:
    """The whole action in one prompt, `n` videos, the critic's pick judged; `method` names the row (best-of-n
    stays best-of-n when the loop it is matched to needed one call)."""
    gen = load_generator(BACKBONE, **ctx.generator_options())
    frame = render_scene(task.scene)
    prompt = task.action[0].upper() + task.action[1:] + "."
    t0 = time.perf_counter()
    segments = [gen.generate(SegmentRequest(image=frame, prompt=prompt, num_frames=ctx.num_frames, height=ctx.height,
                                            width=ctx.width, seed=_seed(seed, task.id, i))) for i in range(n)]
    best = best_by_critic(task.action, frame, [s.frames for s in segments], run_reading(ctx))
    wall = time.perf_counter() - t0
    if keep is not None:
        keep["video"] = best
    verdict = judge_frame(reference_after(task.scene, task.steps), best[-1])
    return LearnedResult(task_id=task.id, category=task.category, horizon=task.horizon, seed=seed,
                         method=method, model=ctx.lora or ctx.model or "shipped",
                         success=verdict.success, pixel_mae=verdict.pixel_mae, psnr=verdict.psnr, generator_calls=n,
                         wall_s=wall, generator_s=sum(s.timings.get("generate_s", 0.0) for s in segments),
                         status="done")


def run_loop(task: Task, seed: int, method: str, ctx: RunContext, scratch: Path,
             keep: dict | None = None) -> LearnedResult:
    ws = scratch / f"{task.id}-{method}-{seed}"
    shutil.rmtree(ws, ignore_errors=True)
    image = save_png(render_scene(task.scene), ws / "start.png")
    ctx = ctx.model_copy(update={"workspace": str(ws), "out_dir": str(ws / "out"), **LOOP_VARIANTS[method]})
    t0 = time.perf_counter()
    thread = episode_thread(ws)
    with Session(ws) as session:
        state = session.start(task.action, str(image), ctx, thread).state
    wall = time.perf_counter() - t0
    video = np.load(ws / "out" / "frames.npy")
    if keep is not None:
        keep["video"] = video
    verdict = judge_frame(reference_after(task.scene, task.steps), video[-1])
    store = Workspace.of(ws).artifacts
    ledger = store.get_model(state.ledger_ref, Ledger)
    looks = ledger_looks(ledger)
    pairs, first, generator_s = [], None, 0.0
    with Workspace.of(ws).reading_traces() as traces:
        plans = {p.version: store.get_model(p.plan, Plan) for p in traces.plans(thread)}
        for attempt in traces.attempts(thread):
            generator_s += attempt.generate_s
            sub = plans[attempt.plan_version].sub_actions[attempt.sub_action_index]
            truth = judge_segment(task.scene, sub, looks, store.get_frame(attempt.conditioning_frame),
                                  store.get_frame(attempt.last_frame))
            if truth is None:
                continue
            if first is None:
                first = truth.success
            if attempt.judged and attempt.passed is not None:
                pairs.append((bool(attempt.passed), truth.success))
    shutil.rmtree(ws, ignore_errors=True)
    return LearnedResult(task_id=task.id, category=task.category, horizon=task.horizon, seed=seed, method=method,
                         model=ctx.lora or ctx.model or "shipped", success=verdict.success,
                         pixel_mae=verdict.pixel_mae, psnr=verdict.psnr, generator_calls=state.generator_calls,
                         wall_s=wall, generator_s=generator_s, status=state.status, critic_tp=sum(c and t for c, t in pairs),
                         critic_fp=sum(c and not t for c, t in pairs), critic_fn=sum(t and not c for c, t in pairs),
                         critic_tn=sum(not c and not t for c, t in pairs), first_segment_success=first)


def run_learned(out: str | Path, *, size: int = 20, seeds: int = 3, methods: tuple[str, ...] = METHODS,
                model: str = "", lora: str = "", progress: bool = True) -> list[LearnedResult]:
    """Every method on the first `size` test tasks with `seeds` seeds; rows appended to `out` (JSONL),
    those already there skipped (a rerun continues)."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [LearnedResult.model_validate_json(line) for line in path.read_text().splitlines()] if path.exists() else []
    label = lora or model or "shipped"
    done = {(r.task_id, r.seed, r.method) for r in rows if r.model == label}
    tasks = build_suite("test", size)
    scratch = Path(tempfile.mkdtemp(prefix="spiral-learned-"))
    ordered = [m for m in ("spiral", *METHODS) if m in methods]  # best-of-n needs SPIRAL's calls first
    ordered = list(dict.fromkeys(ordered))
    jobs = [(t, s, m) for t in tasks for s in range(seeds) for m in ordered if (t.id, s, m) not in done]
    try:
        for task, seed, method in tqdm(jobs, desc="tabletop-tiny bench", disable=not progress, unit="episode"):
            ctx = context(seed, model=model, lora=lora)
            if method in LOOP_VARIANTS:
                result = run_loop(task, seed, method, ctx, scratch)
            else:
                calls = next((r.generator_calls for r in rows if (r.task_id, r.seed, r.method, r.model)
                              == (task.id, seed, "spiral", label)), 1)
                result = run_open_loop(task, seed, 1 if method == "open-loop" else calls, ctx, method=method)
            rows.append(result)
            with path.open("a") as fh:
                fh.write(json.dumps(result.model_dump()) + "\n")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return [r for r in rows if r.model == label]


def strips_figure(task_index: int, seed: int, path: str | Path, model: str = "", lora: str = "") -> Path:
    """Keyframe strips of one held-out task: open-loop and SPIRAL, with the base weights and (given `lora`)
    after RL; each row titled with the judge's verdict."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    task = build_suite("test", task_index + 1)[task_index]
    rows = []
    scratch = Path(tempfile.mkdtemp(prefix="spiral-strips-"))
    try:
        for label, adapter in (("base", ""), ("after RL", lora)):
            if label == "after RL" and not lora:
                continue
            ctx = context(seed, model=model, lora=adapter)
            for method in ("open-loop", "spiral"):
                keep: dict = {}
                if method == "spiral":
                    result = run_loop(task, seed, method, ctx, scratch, keep)
                else:
                    result = run_open_loop(task, seed, 1, ctx, keep)
                video = keep["video"]
                picks = np.linspace(0, len(video) - 1, 8).astype(int)
                verdict = "right" if result.success else "wrong"
                rows.append((f"{method}, {label}: {result.generator_calls} calls, judge: {verdict}",
                             np.concatenate(list(video[picks]), axis=1)))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    fig, axes = plt.subplots(len(rows), 1, figsize=(12, 1.9 * len(rows)), squeeze=False)
    for ax, (title, strip) in zip(axes[:, 0], rows, strict=True):
        ax.imshow(strip)
        ax.set_title(title, fontsize=9, loc="left")
        ax.axis("off")
    fig.suptitle(f"{task.id}: {task.action}", fontsize=10)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=72)
    plt.close(fig)
    return out
