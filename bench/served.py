"""`spiral bench --server URL`: the closed-loop methods run on a LangGraph fleet, scored here.

The servers run the plain `sim` backbone (the graph and agents as deployed); their checkpoints and
traces go to the shared PostgreSQL, their segments to the shared artifact store. The ground truth
never leaves this process: each recorded attempt's request (conditioning frame, prompt, seed, sizes)
is rendered again by the simulator here, which is deterministic, and the re-rendered frames must be the
stored ones bit for bit (else the servers run another simulator, and the bench says so instead of
scoring). Then the same scorer as the in-process bench (`score_closed_loop`) reads goal completion,
critic accuracy and the video metrics, so the two give the same figures for the same seeds.

Per-episode wall time is the fleet's (queueing included); generator seconds and checkpoint bytes are
the servers' and are not measured here (0).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..graph.fleet import Fleet, FleetEpisode, remote_context
from ..memory.workspace import Workspace
from ..tools.errors import InputError, SpiralError
from ..tools.media import png_bytes
from ..tools.video import SegmentRequest
from ..tools.video.sim import SimTruth, SimVideoGenerator
from ..tools.world.render import render_scene
from ..vocabulary.config import RunContext
from ..vocabulary.environment import environment
from ..vocabulary.state import Ledger
from .episodes import SPIRAL_VARIANTS, EpisodeResult, Job, score_closed_loop
from .tasks import SUITE_VERSION, Task


class ReplayedTruth:
    """The simulator's ground truth of recorded segments, recomputed from their requests."""

    def __init__(self, difficulty: str, context: RunContext, attempts: list, store) -> None:
        self.sim, self.context, self.store = SimVideoGenerator(difficulty), context, store
        self.by_segment = {a.segment: a for a in attempts}

    def __call__(self, segment: str) -> SimTruth | None:
        attempt = self.by_segment.get(segment)
        if attempt is None:
            return None
        request = SegmentRequest(image=self.store.get_frame(attempt.conditioning_frame), prompt=attempt.prompt,
                                 seed=attempt.seed, num_frames=self.context.num_frames, height=self.context.height,
                                 width=self.context.width)
        rendered, truth = self.sim.generate_with_truth(request)
        if not np.array_equal(rendered.frames, self.store.get_frames(segment)):
            raise SpiralError(f"segment {segment} of thread {attempt.thread_id} does not re-render to the same frames "
                              "here: the servers run another version of the simulator than this machine")
        return truth


def check_served(methods: list[str]) -> None:
    if not environment().database_uri or not environment().artifacts_url:
        raise InputError("--server: set SPIRAL_DATABASE_URI and SPIRAL_ARTIFACTS_URL to the fleet's PostgreSQL and "
                         "artifact store, so this machine can score what the servers recorded")
    stored = [m for m in methods if m.startswith("spiral-reflective")]
    if stored:
        raise InputError(f"--server: {', '.join(stored)} use a lessons store in this machine's workspace; run them "
                         "in-process")


def _context(job: Job) -> RunContext:
    return RunContext(backbone="sim", difficulty=job.difficulty, seed=job.seed, write_video=False,
                      **SPIRAL_VARIANTS[job.method])


def episode_name(job: Job, task: Task) -> str:
    return f"bench-{SUITE_VERSION}-{job.split}-{job.difficulty}-{job.method}-{task.id}-s{job.seed}"


def served_results(jobs: list[Job], tasks: tuple[Task, ...], urls: list[str], concurrency: int,
                   progress=None) -> Iterator[EpisodeResult]:
    """Run the closed-loop `jobs` on the fleet at `urls`, then score each from the shared traces and store."""
    fleet = Fleet(urls, environment().backbone_setting("server_token"), concurrency=concurrency)
    fleet.check()
    episodes = [FleetEpisode(name=episode_name(job, tasks[job.task_index]), action=tasks[job.task_index].action,
                             image_png=png_bytes(render_scene(tasks[job.task_index].scene)),
                             context=remote_context(_context(job))) for job in jobs]
    report = fleet.run(episodes, progress)
    failed = report.failed
    if failed:
        raise SpiralError(f"{len(failed)} of {len(jobs)} served episodes failed (first: {failed[0].name}: "
                          f"{failed[0].reason}); run the same command again to retry them")
    space = Workspace.of(None)
    store = space.artifacts
    with space.reading_traces() as traces:
        for job, outcome in zip(jobs, report.outcomes, strict=True):
            task = tasks[job.task_index]
            attempts = traces.attempts(outcome.thread_id)
            ledger = store.get_model(outcome.ledger_ref, Ledger)
            scores = score_closed_loop(task, ledger, attempts, store, ReplayedTruth(job.difficulty, _context(job),
                                                                                   attempts, store))
            scores.pop("video")
            yield EpisodeResult(suite=SUITE_VERSION, split=job.split, difficulty=job.difficulty, method=job.method,
                                task_id=task.id, seed=job.seed, category=task.category, horizon=task.horizon,
                                generator_calls=outcome.generator_calls, wall_s=outcome.seconds, generator_s=0.0,
                                status=outcome.status, checkpoint_bytes=0, **scores)
