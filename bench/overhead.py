"""What the loop itself costs: per generator call, outside the generator, by component, next to a floor.

SPIRAL runs ActWM-Sim tasks through the session driver on the `sim` backbone
(whose segments take milliseconds, so everything around them shows), all in
one workspace as rollout collection would. Every component is timed
exclusively (time inside a nested timed call counts for the inner one):

* generator — the simulated video model (`sim`), the figure to subtract;
* perception — reading objects from frames (critic, ledger, planner);
* critic — the perception critic's own logic around perception;
* artifact writes / reads — encoding, hashing, files, the in-process cache;
* trace DB — typed records through memory/traces.py;
* checkpoints — LangGraph's SQLite saver;
* other — LangGraph's own work, the nodes' logic, pydantic validation.

The floor is what any durable LangGraph loop doing the same work must pay: a
bare graph with a one-integer state on the same SQLite saver and durability
(`sync`), taking per episode as many checkpointed steps as SPIRAL took, and
writing the same artifact bytes SPIRAL wrote in that episode, spread over its
steps, through the same write-once store (atomic rename, fsync before the
checkpoint that follows commits).
"""

from __future__ import annotations

import functools
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

COMPONENTS = ("generator", "perception", "critic", "artifact writes", "artifact reads", "trace DB", "checkpoints",
              "artifact fsync")


class ExclusiveTimers:
    """Wall time per component, each call's time minus that of the timed calls inside it, kept apart
    for the loop's own thread and for background threads (LangGraph saves checkpoints in one while
    the next step runs, so that time overlaps the loop's)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.background: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._local = threading.local()
        self._main = threading.get_ident()
        self._undo: list[Callable[[], None]] = []

    def wrap(self, component: str, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            stack = self._local.__dict__.setdefault("stack", [])  # [start, time of timed children]
            stack.append([time.perf_counter(), 0.0])
            try:
                return fn(*args, **kwargs)
            finally:
                start, inner = stack.pop()
                elapsed = time.perf_counter() - start
                where = self.seconds if threading.get_ident() == self._main else self.background
                where[component] += elapsed - inner
                self.calls[component] += 1
                if stack:
                    stack[-1][1] += elapsed

        return timed

    def patch_method(self, component: str, cls: type, name: str) -> None:
        original = cls.__dict__[name]
        setattr(cls, name, self.wrap(component, original))
        self._undo.append(lambda: setattr(cls, name, original))

    def patch_function(self, component: str, module: str, name: str, outside: str = "") -> None:
        """The function in its module and in every spiral module that imported it by name (but those
        under `outside`, whose calls belong to their own component)."""
        original = getattr(sys.modules[module], name)
        timed = self.wrap(component, original)
        holders = [m for key, m in list(sys.modules.items()) if key.startswith("spiral") and
                   not (outside and key.startswith(outside)) and getattr(m, name, None) is original]
        for holder in holders:
            setattr(holder, name, timed)
            self._undo.append(lambda h=holder: setattr(h, name, original))

    def on_restore(self, undo: Callable[[], None]) -> None:
        """Something else to put back when the timers are removed."""
        self._undo.append(undo)

    def restore(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


def _instrument(timers: ExclusiveTimers) -> None:
    from ..memory.artifacts import ArtifactStore
    from ..memory.traces import TraceDB
    from ..nodes.critic import PerceptionCritic
    from .truth import ScoredSim

    timers.patch_method("generator", ScoredSim, "generate")
    # the loop's perception, where nodes call it; the simulator perceives its conditioning frame
    # (through `perceive`, which calls `perceive_frames` inside the tools room), and that is part of the
    # (simulated) video model, so no holder inside spiral.tools is patched
    for name in ("perceive", "perceive_frames"):
        timers.patch_function("perception", "spiral.tools.perception", name, outside="spiral.tools")
    timers.patch_method("critic", PerceptionCritic, "judge")
    for name in ("put_bytes", "put_frame", "put_frames", "put_model"):
        timers.patch_method("artifact writes", ArtifactStore, name)
    for name in ("get_bytes", "get_frame", "get_frames", "get_model"):
        timers.patch_method("artifact reads", ArtifactStore, name)
    for name in ("record_episode", "record_plan", "record_sub_action", "record_attempt", "record_judgement",
                 "record_review", "add_usage", "record_lessons", "attempts"):
        timers.patch_method("trace DB", TraceDB, name)
    from ..memory.sqlite_saver import SpiralSqliteSaver

    for name in ("put", "put_writes", "get_tuple"):
        timers.patch_method("checkpoints", SpiralSqliteSaver, name)
    timers.patch_function("artifact fsync", "spiral.memory.durable", "wait_for_disk")


class OverheadResult(BaseModel):
    episodes: int
    generator_calls: int
    checkpointed_steps: int
    wall_s: float
    component_s: dict[str, float]
    """On the loop's thread."""
    background_s: dict[str, float]
    """In LangGraph's background threads (checkpoint saving overlaps the next step)."""
    floor_s: float
    difficulty: str
    repeats: int = 1

    def per_call_ms(self, seconds: float) -> float:
        return 1000 * seconds / max(self.generator_calls, 1)

    @property
    def outside_generator_s(self) -> float:
        return self.wall_s - self.component_s.get("generator", 0.0)


class WrittenBytes:
    """The artifact payloads each episode stored, in order (what the floor writes again)."""

    def __init__(self) -> None:
        self.by_thread: dict[str, list[tuple[bytes, str]]] = defaultdict(list)
        self.thread = ""

    def install(self, timers: ExclusiveTimers) -> None:
        from ..memory.artifacts import ArtifactStore

        original = ArtifactStore.put_bytes

        def recording(store: Any, data: bytes, ext: str, durable: bool = True) -> str:
            self.by_thread[self.thread].append((data, ext))
            return original(store, data, ext, durable)

        ArtifactStore.put_bytes = recording  # type: ignore[method-assign]
        timers.on_restore(lambda: setattr(ArtifactStore, "put_bytes", original))


def _spiral_episodes(tasks, workspace: Path, difficulty: str, timers: ExclusiveTimers | None,
                     written: WrittenBytes | None = None) -> tuple[int, int, float]:
    """(generator calls, checkpointed steps, wall seconds) of running the tasks in one session."""
    import sqlite3

    from ..graph.session import Session
    from ..tools.media import save_png
    from ..tools.world.render import render_scene
    from ..vocabulary.config import RunContext
    from .truth import BACKBONE, install

    install()
    images = [save_png(render_scene(t.scene), workspace / "inputs" / f"{t.id}.png") for t in tasks]
    context = RunContext(backbone=BACKBONE, difficulty=difficulty, seed=0, write_video=False)
    calls = 0
    if timers is not None:
        if written is not None:
            written.install(timers)
        _instrument(timers)
    t0 = time.perf_counter()
    try:
        with Session(workspace) as session:
            for task, image in zip(tasks, images, strict=True):
                if written is not None:
                    written.thread = f"overhead-{task.id}"
                run = session.start(task.action, str(image), context, f"overhead-{task.id}")
                calls += run.state.generator_calls
    finally:
        if timers is not None:
            timers.restore()
    wall = time.perf_counter() - t0
    with sqlite3.connect(workspace / "checkpoints.sqlite") as conn:
        steps = conn.execute("select count(*) from checkpoints").fetchone()[0]
    return calls, steps, wall


def floor_seconds(episodes: list[tuple[int, list[tuple[bytes, str]]]], workspace: Path) -> float:
    """Seconds for a bare LangGraph loop with a one-integer state to take, per episode, the same checkpointed
    steps on the same SQLite saver and durability, writing the episode's artifact bytes (spread evenly over
    its steps) through the same store, with the session's deferred durability (the saver waits for them)."""
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    from ..graph.session import DURABILITY
    from ..memory.artifacts import ArtifactStore
    from ..memory.checkpoints import sqlite_checkpointer
    from ..memory.durable import deferred_durability

    class Counter(TypedDict):
        n: int
        limit: int
        episode: int

    store = ArtifactStore(workspace / "artifacts")
    chunks: dict[tuple[int, int], list[tuple[bytes, str]]] = {}
    for i, (steps, payloads) in enumerate(episodes):
        nodes = max(steps - 2, 1)
        for k, payload in enumerate(payloads):
            chunks.setdefault((i, k * nodes // max(len(payloads), 1)), []).append(payload)

    def step(state: Counter) -> dict:
        for data, ext in chunks.get((state["episode"], state["n"]), []):
            store.put_bytes(data, ext)
        return {"n": state["n"] + 1}

    builder = StateGraph(Counter)
    builder.add_node("step", step)
    builder.add_edge(START, "step")
    builder.add_conditional_edges("step", lambda state: "step" if state["n"] < state["limit"] else END)
    graph = builder.compile()
    with sqlite_checkpointer(workspace) as saver, deferred_durability(store.root):
        bound = graph.copy(update={"checkpointer": saver})
        t0 = time.perf_counter()
        for i, (steps, _) in enumerate(episodes):
            # the input step and the first node's step are checkpoints too
            bound.invoke({"n": 0, "limit": max(steps - 2, 1), "episode": i},
                         {"configurable": {"thread_id": f"floor-{i}"}}, durability=DURABILITY)
        return time.perf_counter() - t0


def loop_overhead(size: int = 20, difficulty: str = "medium", repeats: int = 3) -> OverheadResult:
    """SPIRAL and the floor `repeats` times each, alternating (so both see the same machine); the
    repeat whose SPIRAL-to-floor ratio is the median is reported."""
    import sqlite3

    from .tasks import build_suite

    tasks = build_suite("test", size)
    home = Path(tempfile.mkdtemp(prefix="spiral-overhead-"))
    results = []
    try:
        (home / "warm" / "inputs").mkdir(parents=True)
        _spiral_episodes(tasks[:3], home / "warm", difficulty, None)  # imports, lookup tables, compiled graph
        floor_seconds([(5, [(b"warm", "bin")])] * 3, home / "floor-warm")
        for rep in range(repeats):
            (home / f"timed-{rep}" / "inputs").mkdir(parents=True)
            timers, written = ExclusiveTimers(), WrittenBytes()
            calls, steps, wall = _spiral_episodes(tasks, home / f"timed-{rep}", difficulty, timers, written)
            with sqlite3.connect(home / f"timed-{rep}" / "checkpoints.sqlite") as conn:
                per_episode = dict(conn.execute("select thread_id, count(*) from checkpoints group by thread_id"))
            floor = floor_seconds([(n, written.by_thread[thread]) for thread, n in per_episode.items()],
                                  home / f"floor-{rep}")
            results.append(OverheadResult(
                episodes=len(tasks), generator_calls=calls, checkpointed_steps=steps, wall_s=wall,
                component_s=dict(timers.seconds), background_s=dict(timers.background), floor_s=floor,
                difficulty=difficulty, repeats=repeats))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    results.sort(key=lambda r: r.outside_generator_s / r.floor_s)
    return results[len(results) // 2]


def overhead_section(result: OverheadResult, command: str) -> str:
    ms = result.per_call_ms
    outside = ms(result.outside_generator_s)
    floor = ms(result.floor_s)
    saves = result.background_s.get("checkpoints", 0.0)
    fsync = result.background_s.get("artifact fsync", 0.0)
    other = (result.outside_generator_s - sum(v for k, v in result.component_s.items() if k != "generator") - saves
             - fsync)
    labels = {"checkpoints": "checkpoint reads", "artifact fsync": "artifact fsync waited for on the loop's thread",
              "other": "other (LangGraph's loop, the nodes' own code, the session: preflight, finalize)"}
    rows = [(labels.get(name, name), ms(result.component_s.get(name, 0.0))) for name in COMPONENTS[1:]]
    rows.append(("checkpoint saves (LangGraph's saver thread; the loop waits for each)", ms(saves)))
    rows.append(("artifact fsync the saver waits for before each commit (saver thread)", ms(fsync)))
    rows.append((labels["other"], ms(max(other, 0.0))))
    lines = ["### The loop's own cost", "", "```bash", command, "```", "",
             f"{result.episodes} ActWM-Sim test tasks at `{result.difficulty}`, seed 0, `sim` backbone, one "
             f"session and workspace: {result.generator_calls} generator calls, {result.checkpointed_steps} "
             "checkpointed steps. Milliseconds per generator call; each component's time excludes the timed "
             "calls inside it. The floor is a bare LangGraph graph with a one-integer state taking the same "
             "checkpointed steps per episode on the same SQLite saver, with the same durability (`sync`: each "
             "checkpoint saved before the next step), writing the same artifact bytes per episode through the same "
             "write-once store (atomic rename, fsync before the next checkpoint commits). SPIRAL and the floor ran "
             f"{result.repeats} times each, alternating; the run with the median ratio is shown.", "",
             "| component | ms per generator call |", "| --- | --- |"]
    lines += [f"| {name} | {value:.1f} |" for name, value in rows]
    lines += [f"| **outside the generator** | **{outside:.1f}** |",
              f"| generator (`sim`) | {ms(result.component_s.get('generator', 0.0)):.1f} |",
              f"| floor: bare LangGraph + SQLite + the same artifact writes, same steps | {floor:.1f} |", "",
              f"Outside the generator SPIRAL costs {outside / max(floor, 1e-9):.1f}× the floor. Checkpoint saves "
              "run on LangGraph's saver thread; a step's writes may overlap the next step, its checkpoint does "
              "not, so that row is an upper bound of what the loop waits for (and `other` a lower bound). "
              "SPIRAL's artifact files are written by a background writer the savers wait for."]
    return "\n".join(lines) + "\n"
