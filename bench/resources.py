"""Memory over a long-lived process: RSS after each of N sequential episodes in one session.

Rollout collection and a LangGraph server run episode after episode in one
process; anything an episode leaves behind (connections, caches without a
bound, threads) shows as RSS that climbs. The first episode pays for imports
and warm-up, so growth is measured from after it. ActWM-Sim test tasks at the
given difficulty, `sim` backbone, one workspace.
"""

from __future__ import annotations

import gc
import shutil
import tempfile
from pathlib import Path

from pydantic import BaseModel

GROWTH_BUDGET = 0.05
"""RSS may grow at most 5 % from after the first episode to after the last."""


class MemoryProfile(BaseModel):
    episodes: int
    rss_mb: list[float]
    """RSS after each episode (after a garbage collection), MB."""
    generator_calls: int

    @property
    def growth(self) -> float:
        return (self.rss_mb[-1] - self.rss_mb[0]) / self.rss_mb[0]

    @property
    def peak_growth(self) -> float:
        return (max(self.rss_mb) - self.rss_mb[0]) / self.rss_mb[0]


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def memory_profile(size: int = 20, difficulty: str = "medium") -> MemoryProfile:
    from ..graph.session import Session
    from ..tools.media import save_png
    from ..tools.world.render import render_scene
    from ..vocabulary.config import RunContext
    from .tasks import build_suite
    from .truth import BACKBONE, install

    install()
    tasks = build_suite("test", size)
    workspace = Path(tempfile.mkdtemp(prefix="spiral-memory-"))
    try:
        images = [save_png(render_scene(t.scene), workspace / "inputs" / f"{t.id}.png") for t in tasks]
        context = RunContext(backbone=BACKBONE, difficulty=difficulty, seed=0, write_video=True)
        readings, calls = [], 0
        for task, image in zip(tasks, images, strict=True):
            with Session(workspace) as session:  # as a server or a rollout worker would: a session per episode
                calls += session.start(task.action, str(image), context, f"memory-{task.id}").state.generator_calls
            gc.collect()
            readings.append(round(rss_mb(), 1))
        return MemoryProfile(episodes=len(tasks), rss_mb=readings, generator_calls=calls)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def memory_section(profile: MemoryProfile, command: str) -> str:
    verdict = "within" if profile.growth <= GROWTH_BUDGET else "OVER"
    samples = ", ".join(f"{mb:.0f}" for mb in profile.rss_mb)
    return "\n".join([
        "### Memory over many episodes in one process", "", "```bash", command, "```", "",
        f"{profile.episodes} ActWM-Sim test tasks one after another in one process (a session per episode, one "
        f"workspace, videos written), `sim` backbone, {profile.generator_calls} generator calls. RSS after each "
        "episode, after a garbage collection:", "",
        f"RSS (MB): {samples}", "",
        f"From after the first episode to after the last: {profile.growth:+.1%} (peak {profile.peak_growth:+.1%}); "
        f"the budget is {GROWTH_BUDGET:.0%}: {verdict}.", ""])
