"""What every node needs from the run: settings, the artifact store, the trace DB, the thread id."""

from __future__ import annotations

from pathlib import Path

from langgraph.config import get_config
from langgraph.runtime import Runtime

from ..graph.config import RunContext
from ..graph.state import EpisodeState
from ..memory.artifacts import ArtifactStore
from ..memory.traces import TraceDB


def settings_of(state: EpisodeState, runtime: Runtime[RunContext] | None) -> RunContext:
    """The run's settings: saved in state on the first step, from the run context."""
    if state.settings is not None:
        return state.settings
    ctx = getattr(runtime, "context", None) if runtime is not None else None
    if isinstance(ctx, RunContext):
        return ctx
    if isinstance(ctx, dict):
        return RunContext(**ctx)
    return RunContext()


def artifact_store(settings: RunContext) -> ArtifactStore:
    return ArtifactStore(Path(settings.workspace) / "artifacts")


def trace_db(settings: RunContext) -> TraceDB:
    return TraceDB(Path(settings.workspace) / "traces.sqlite")


def thread_id() -> str:
    try:
        return str(get_config().get("configurable", {}).get("thread_id", "default"))
    except RuntimeError:
        return "default"
