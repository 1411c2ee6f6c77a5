"""Rollouts through the graph itself: ActWM-Sim tasks run by the session driver into a workspace.

One thread per task (`PREFIX-TASK-sSEED`), so a rerun finds what an earlier
run left: a finished thread is kept, an unfinished one (the run was killed) is
resumed from its last checkpoint, and a missing one is started. A rerun after a
kill therefore ends with exactly the episodes, and the trace rows, an
uninterrupted run has. A task the planner cannot read at the run's size is
reported and skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from pydantic import BaseModel

from ..bench.tasks import build_suite
from ..graph.fleet import Fleet, FleetEpisode, FleetReport, remote_context
from ..graph.session import Session
from ..tools.errors import InputError
from ..tools.media import png_bytes, save_png
from ..tools.world.render import render_scene
from ..vocabulary.config import RunContext

Progress = Callable[[Iterable, str], Iterable]


class Collected(BaseModel):
    started: int
    resumed: int
    kept: int
    """Finished before this call."""
    failed: list[str]
    """`task: reason` for each task the planner could not read."""

    @property
    def episodes(self) -> int:
        return self.started + self.resumed + self.kept


def run_tasks(context: RunContext, split: str, size: int, prefix: str,
              progress: Progress = lambda items, label: items) -> Collected:
    """`size` tasks of `split` through the session driver into `context.workspace` (see the module docstring)."""
    tasks = build_suite(split, size)
    workspace = Path(context.workspace)
    started = resumed = kept = 0
    failed: list[str] = []
    with Session(workspace) as session:
        for task in progress(tasks, f"{prefix}: {len(tasks)} tasks (G={context.group_size})"):
            thread = f"{prefix}-{task.id}-s{context.seed}"
            state = session.state(thread)
            if state is not None and state.summary:
                kept += 1
                continue
            if state is not None and state.settings is not None:
                session.resume(thread)
                resumed += 1
                continue
            image = save_png(render_scene(task.scene, context.height, context.width),
                             workspace / "inputs" / f"{task.id}.png")
            try:
                session.start(task.action, str(image), context, thread)
                started += 1
            except InputError as exc:  # one task the planner cannot read at this size: say so, go on
                failed.append(f"{task.id}: {exc}")
    return Collected(started=started, resumed=resumed, kept=kept, failed=failed)


def fleet_episodes(context: RunContext, split: str, size: int, prefix: str) -> list[FleetEpisode]:
    """The same tasks and thread names as `run_tasks`, as episodes for a LangGraph fleet."""
    settings = remote_context(context)
    return [FleetEpisode(name=f"{prefix}-{task.id}-s{context.seed}", action=task.action, context=settings,
                         image_png=png_bytes(render_scene(task.scene, context.height, context.width)))
            for task in build_suite(split, size)]


def run_tasks_on_fleet(context: RunContext, split: str, size: int, prefix: str, fleet: Fleet,
                       progress: Callable[[Iterable, str, int], Iterable] | None = None) -> FleetReport:
    """`size` tasks of `split` run by the fleet's servers (graph/fleet.py): rerun, it submits only what is
    missing; the traces and artifacts land where the servers keep them (their PostgreSQL and store)."""
    fleet.check()
    return fleet.run(fleet_episodes(context, split, size, prefix), progress)
