"""One benchmark episode per method, scored against the world's ground truth.

Methods (all on the same backbone and seeds):
* `open-loop`  — the whole action as one prompt, one call (16 frames per motion).
* `best-of-n`  — open-loop N times, N = SPIRAL's mean generator calls on that task; the
  same perception critic picks the best against the planner's post-conditions.
* `spiral`     — the closed loop, through the session driver (SQLite checkpoints), as a user runs it.
* `spiral-no-critic`, `spiral-no-memory`, `spiral-no-replan` — ablations.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from ..graph.session import Session
from ..memory.checkpoints import checkpoint_path
from ..memory.workspace import Workspace
from ..nodes.critic import PerceptionCritic
from ..nodes.ledger import ledger_from
from ..nodes.planner import RulePlanAgent
from ..nodes.reading import SHARP, Reading
from ..tools.media import save_png, stitch
from ..tools.perception import perceive
from ..tools.predicates import Predicate, evaluate
from ..tools.video import SegmentRequest, load_generator
from ..tools.world.render import render_scene
from ..vocabulary.config import RunContext
from ..vocabulary.state import Ledger, SubAction
from . import metrics
from .tasks import SUITE_VERSION, Task, build_suite
from .truth import BACKBONE, ScoredSim, install

METHODS = ("open-loop", "best-of-n", "spiral", "spiral-no-critic", "spiral-no-memory", "spiral-no-replan")
SPIRAL_VARIANTS = {
    "spiral": {},
    "spiral-no-critic": {"critic": "none"},
    "spiral-no-memory": {"memory": "off"},
    "spiral-no-replan": {"max_replans": 0},
    "spiral-reflective": {"memory": "reflective", "memory_write": False},
    "spiral-reflective-learn": {"memory": "reflective", "memory_write": True},
}


class Job(BaseModel):
    split: str
    size: int
    task_index: int
    method: str
    seed: int
    difficulty: str
    n_calls: int = 0
    store_dir: str = ""
    """Workspace of the reflective-memory store to use (spiral-reflective*)."""


class EpisodeResult(BaseModel):
    suite: str
    split: str
    difficulty: str
    method: str
    task_id: str
    seed: int
    category: str
    horizon: int
    success: bool
    completion: float
    fidelity: float
    temporal: float
    subject_consistency: float
    background_consistency: float
    motion_smoothness: float
    flicker: float
    generator_calls: int
    wall_s: float
    generator_s: float
    critic_tp: int = 0
    critic_fp: int = 0
    critic_fn: int = 0
    critic_tn: int = 0
    checkpoint_bytes: int = 0
    attempts: int = 0
    status: str = ""

    @property
    def key(self) -> dict:
        return {k: getattr(self, k) for k in ("suite", "split", "difficulty", "method", "task_id", "seed")}


@lru_cache(maxsize=4)
def suite(split: str, size: int) -> tuple[Task, ...]:
    return tuple(build_suite(split, size))


def _seed(*parts: object) -> int:
    return zlib.crc32(":".join(map(str, parts)).encode()) & 0x7FFFFFFF


def _generator(difficulty: str) -> ScoredSim:
    """The very instance the graph loads for these settings (same registry key)."""
    install()
    gen = load_generator(BACKBONE, **RunContext(backbone=BACKBONE, difficulty=difficulty).generator_options())
    assert isinstance(gen, ScoredSim)
    return gen


def _truth_success(post: list[str], movers: list[str], truth) -> bool:
    """Did a segment truly do its sub-action, and nothing else? (for critic accuracy)"""
    objects = metrics.by_look(truth.start, truth.end)
    if not all(evaluate(Predicate.parse(p), objects) for p in post):  # type: ignore[arg-type]
        return False
    if not metrics.physically_plausible(truth.end):
        return False
    ends = metrics.by_look(truth.start, truth.end)
    for o in truth.start.movables:
        e = ends.get(o.id)
        if o.id in movers:
            continue
        if e is None or np.hypot(e.x - o.x, e.y - o.y) > metrics.MOVE_TOLERANCE \
                or np.abs(np.subtract(e.tint, o.tint)).max() > metrics.TINT_TOLERANCE:
            return False
    return True


def _video_scores(frames: np.ndarray) -> dict:
    return {"temporal": metrics.temporal_consistency(frames),
            "subject_consistency": metrics.subject_consistency(frames),
            "background_consistency": metrics.background_consistency(frames),
            "motion_smoothness": metrics.motion_smoothness(frames), "flicker": metrics.flicker(frames)}


def _goal_scores(task: Task, end_scene) -> dict:
    completion = metrics.goal_completion(task.goal, task.scene, end_scene)
    return {"completion": completion, "success": completion >= 1.0 and metrics.physically_plausible(end_scene),
            "fidelity": metrics.object_fidelity(task.goal, task.scene, end_scene)}


def _open_loop(task: Task, job: Job, frame: np.ndarray, seeds: list[int]):
    gen = _generator(job.difficulty)
    frames = min(16 * max(task.horizon, 1), 257)
    prompt = task.action[0].upper() + task.action[1:] + "."
    candidates = []
    for seed in seeds:
        seg = gen.generate(SegmentRequest(image=frame, prompt=prompt, num_frames=frames, seed=seed))
        candidates.append(seg.frames)
    return candidates


def best_by_critic(action: str, frame: np.ndarray, candidates: list[np.ndarray],
                   reading: Reading = SHARP) -> np.ndarray:
    """Best-of-n's pick: the perception critic (reading frames as `reading`) scores each whole-action video
    against every post-condition of the rule planner's plan (completion first, then the mean score); the first
    wins ties."""
    if len(candidates) == 1:
        return candidates[0]
    seen = reading.perceive(frame)
    plan = RulePlanAgent().plan(action, seen)
    movers = {m for s in plan.sub_actions for m in (s.subject, s.partner) if m}
    whole = SubAction(index=0, verb="move_to", subject=plan.sub_actions[0].subject, subject_desc="objects",
                      description=action, prompt=action,
                      postconditions=[p for s in plan.sub_actions for p in s.postconditions])
    critic, ledger = PerceptionCritic(reading), ledger_from(seen, "")

    def score(frames: np.ndarray) -> tuple[float, float]:
        c = critic.judge(whole, frames, frame, ledger, movers=movers)
        return (c.scores.action_completion, c.scores.mean)

    return max(candidates, key=score)


def run_open_loop(task: Task, job: Job) -> dict:
    return open_loop_episode(task, job)[0]


def open_loop_episode(task: Task, job: Job) -> tuple[dict, np.ndarray]:
    """Scores and the video that was picked (open-loop: the only one; best-of-n: the critic's best)."""
    gen = _generator(job.difficulty)
    gen.reset()
    t0 = time.perf_counter()
    frame = render_scene(task.scene)
    n = 1 if job.method == "open-loop" else max(job.n_calls, 1)
    candidates = _open_loop(task, job, frame, [_seed(job.seed, task.id, i) for i in range(n)])
    best = best_by_critic(task.action, frame, candidates)
    truth = gen.truth_of(best)
    assert truth is not None
    wall = time.perf_counter() - t0
    return {**_goal_scores(task, truth.end), **_video_scores(best), "generator_calls": n, "wall_s": wall,
            "generator_s": gen.seconds, "status": "done"}, best


def episode_thread(workspace: Path) -> str:
    """A thread id of its own for a bench episode: its scratch folder's name (task, method, seed) and a random
    part, since with SPIRAL_DATABASE_URI every episode's checkpoints and traces share one database."""
    return f"{workspace.name}-{uuid.uuid4().hex[:8]}"


def run_spiral(task: Task, job: Job, scratch: Path) -> dict:
    return spiral_episode(task, job, scratch)[0]


def spiral_episode(task: Task, job: Job, scratch: Path) -> tuple[dict, np.ndarray]:
    """Scores and the stitched video of one closed-loop episode (its workspace is removed after)."""
    gen = _generator(job.difficulty)
    gen.reset()
    ws = scratch / f"{task.id}-{job.method}-{job.seed}"
    shutil.rmtree(ws, ignore_errors=True)
    image = save_png(render_scene(task.scene), ws / "start.png")
    context = RunContext(backbone=BACKBONE, difficulty=job.difficulty, seed=job.seed, workspace=str(ws),
                         out_dir=str(ws / "out"), write_video=False, **SPIRAL_VARIANTS[job.method])
    t0 = time.perf_counter()
    thread = episode_thread(ws)
    with Session(ws, lessons=job.store_dir or None) as session:
        state = session.start(task.action, str(image), context, thread).state
        with Workspace.of(ws).reading_traces() as traces:
            attempts = traces.attempts(thread)
    wall = time.perf_counter() - t0
    store = Workspace.of(ws).artifacts
    ledger = store.get_model(state.ledger_ref, Ledger)
    ckpt = sum(p.stat().st_size for p in ws.glob(checkpoint_path(ws).name + "*"))
    result = score_closed_loop(task, ledger, attempts, store, lambda ref: gen.truth_of(store.get_frames(ref)),
                               video=np.load(ws / "out" / "frames.npy"))
    result.update(generator_calls=state.generator_calls, wall_s=wall, generator_s=gen.seconds, status=state.status,
                  checkpoint_bytes=ckpt)
    shutil.rmtree(ws, ignore_errors=True)
    return result, result.pop("video")


def score_closed_loop(task: Task, ledger: Ledger, attempts: list, store, truth_of,
                      video: np.ndarray | None = None) -> dict:
    """A closed-loop episode's scores against the world's ground truth: the goal from the truth of the last
    accepted segment, the critic's verdicts against the truth of every judged attempt, the video metrics of
    the stitched episode (`video`, or stitched here from the ledger). `truth_of(segment_ref)`: that segment's
    SimTruth. The result carries the video under "video"."""
    if video is None:
        video = stitch([store.get_frames(o.segment) for o in ledger.outcomes], store.get_frame(ledger.first_frame))
    end_scene = task.scene
    if ledger.outcomes:
        truth = truth_of(ledger.outcomes[-1].segment)
        assert truth is not None
        end_scene = truth.end
    pairs = []
    for attempt in attempts:
        truth = truth_of(attempt.segment)
        if truth is not None and attempt.judged and attempt.passed is not None:
            pairs.append((attempt.passed, _truth_success(attempt.postconditions, attempt.movers, truth)))
    return {**_goal_scores(task, end_scene), **_video_scores(video), "critic_tp": sum(c and t for c, t in pairs),
            "critic_fp": sum(c and not t for c, t in pairs), "critic_fn": sum(t and not c for c, t in pairs),
            "critic_tn": sum(not c and not t for c, t in pairs), "attempts": len(attempts), "video": video}


_SCRATCH: Path | None = None


def run_job(job: Job) -> EpisodeResult:
    global _SCRATCH
    if _SCRATCH is None:
        _SCRATCH = Path(tempfile.mkdtemp(prefix="spiral-bench-"))
    task = suite(job.split, job.size)[job.task_index]
    if job.method in SPIRAL_VARIANTS:
        scores = run_spiral(task, job, _SCRATCH)
    else:
        scores = run_open_loop(task, job)
    return EpisodeResult(suite=SUITE_VERSION, split=job.split, difficulty=job.difficulty, method=job.method,
                         task_id=task.id, seed=job.seed, category=task.category, horizon=task.horizon, **scores)
