"""What every node needs from the run, in one place: settings, thread, artifacts, traces, stream.

`NodeContext.of(state, runtime)` builds it from LangGraph's injected `Runtime`
(its context, store, stream writer and execution info), so a test can call a
node with a hand-made `Runtime` and no graph at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime
from pydantic import BaseModel

from ..graph.config import RunContext
from ..graph.state import EpisodeState, Ledger, Plan, SubAction
from ..memory.artifacts import ArtifactStore
from ..memory.traces import TraceDB


@lru_cache(maxsize=64)
def artifact_store(workspace: str) -> ArtifactStore:
    """The workspace's artifact store (one object per workspace and process)."""
    return ArtifactStore(Path(workspace) / "artifacts")


def trace_db(workspace: str) -> TraceDB:
    """The workspace's trace database (one connection per workspace and process)."""
    return TraceDB.open(Path(workspace) / "traces.sqlite")


@dataclass
class NodeContext:
    settings: RunContext
    thread_id: str
    artifacts: ArtifactStore
    traces: TraceDB
    lesson_store: Any | None
    """The reflective-memory store, when the run uses reflective memory and one is attached."""
    write: Callable[[dict], None]

    @classmethod
    def of(cls, state: EpisodeState, runtime: Runtime[RunContext]) -> NodeContext:
        settings = state.settings if state.settings is not None else context_settings(runtime)
        info = getattr(runtime, "execution_info", None)
        thread = (getattr(info, "thread_id", None) or "default") if info is not None else "default"
        store = getattr(runtime, "store", None) if settings.memory == "reflective" else None
        return cls(settings=settings, thread_id=str(thread), artifacts=artifact_store(settings.workspace),
                   traces=trace_db(settings.workspace), lesson_store=store,
                   write=getattr(runtime, "stream_writer", None) or (lambda _: None))

    def emit(self, event: BaseModel) -> None:
        """A custom stream event (graph/events.py) for watching clients."""
        self.write(event.model_dump())

    def plan(self, state: EpisodeState) -> Plan:
        return self.artifacts.get_model(state.plan_ref, Plan)

    def ledger(self, state: EpisodeState) -> Ledger:
        return self.artifacts.get_model(state.ledger_ref, Ledger)

    def step(self, state: EpisodeState) -> SubAction:
        """The plan step at the cursor: the one being generated."""
        return self.plan(state).sub_actions[state.cursor]


def context_settings(runtime: Runtime[RunContext] | None) -> RunContext:
    """The run context a run was started with (a dict from a server client is validated here)."""
    ctx = getattr(runtime, "context", None) if runtime is not None else None
    if isinstance(ctx, RunContext):
        return ctx
    if isinstance(ctx, dict):
        return RunContext(**ctx)
    return RunContext()
