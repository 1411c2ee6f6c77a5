"""What every node needs from the run, in one place: settings, thread, artifacts, traces, stream.

`NodeContext.of(state, runtime)` builds it from LangGraph's injected `Runtime`
(its context, store, stream writer and execution info), so a test can call a
node with a hand-made `Runtime` and no graph at all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.config import get_config
from langgraph.runtime import Runtime
from pydantic import BaseModel

from ..memory.artifacts import ArtifactStore
from ..memory.traces import TraceDB
from ..memory.workspace import Workspace
from ..tools.errors import SpiralError
from ..vocabulary.config import RunContext, default_workspace
from ..vocabulary.state import Attempt, EpisodeState, Ledger, Plan, SubAction
from ..vocabulary.trace_records import AttemptKey
from .reading import Reading, run_reading


class ServerPathError(SpiralError):
    """A server run's settings name a folder outside the server's workspace."""


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
        settings = step_settings(state, runtime)
        info = getattr(runtime, "execution_info", None)
        thread = (getattr(info, "thread_id", None) or "default") if info is not None else "default"
        store = getattr(runtime, "store", None) if settings.memory == "reflective" else None
        space = Workspace.of(settings.workspace)
        return cls(settings=settings, thread_id=str(thread), artifacts=space.artifacts, traces=space.traces(),
                   lesson_store=store,
                   write=getattr(runtime, "stream_writer", None) or (lambda _: None))

    def emit(self, event: BaseModel) -> None:
        """A custom stream event (vocabulary/events.py) for watching clients."""
        self.write(event.model_dump())

    def plan(self, state: EpisodeState) -> Plan:
        return self.artifacts.get_model(state.plan_ref, Plan)

    def ledger(self, state: EpisodeState) -> Ledger:
        return self.artifacts.get_model(state.ledger_ref, Ledger)

    def attempt_key(self, attempt: Attempt, sample: int | None = None) -> AttemptKey:
        """The trace database's key of an attempt of this thread (of one of its group's samples)."""
        return AttemptKey(self.thread_id, attempt.plan_version, attempt.sub_action_index, attempt.try_index,
                          attempt.sample if sample is None else sample)

    def step(self, state: EpisodeState) -> SubAction:
        """The plan step at the cursor: the one being generated."""
        return self.plan(state).sub_actions[state.cursor]

    @property
    def reading(self) -> Reading:
        """How this run's frames are read (the backbone's kind of frames unless the run says otherwise)."""
        return run_reading(self.settings)


def leased(node: Callable[[EpisodeState, Runtime[RunContext]], dict]) -> Callable[[EpisodeState, Runtime[RunContext]], dict]:
    """`node`, holding its workspace's lease while it runs (memory/lease.py): gc removes nothing meanwhile.
    A session driver holds it for a whole run already; on a server each step takes it."""
    @functools.wraps(node)
    def step(state: EpisodeState, runtime: Runtime[RunContext]) -> dict:
        with Workspace.of(step_settings(state, runtime).workspace).lease():
            return node(state, runtime)

    return step


def on_server() -> bool:
    """Whether this step runs for a client of a LangGraph server (the server puts the caller in the config)."""
    try:
        return "langgraph_auth_user" in (get_config().get("configurable") or {})
    except RuntimeError:  # not inside a graph run (a node called on its own)
        return False


def step_settings(state: EpisodeState, runtime: Runtime[RunContext] | None) -> RunContext:
    """The settings a step runs with: the thread's saved ones (else the run's context); on a server, with the
    server's own workspace (see `server_settings`)."""
    settings = state.settings if state.settings is not None else context_settings(runtime)
    return server_settings(settings) if on_server() else settings


def server_settings(settings: RunContext) -> RunContext:
    """On a server, a step works in the server's own workspace whatever the thread's saved settings name: a
    thread started by another server of a fleet (its own workspace folder, shared checkpoints) goes on here,
    and a client that changed the workspace with `update_state` moves nothing. Every other folder a step
    writes to or reads a model from must lie inside that workspace (a client may have changed them too)."""
    root = Path(default_workspace()).resolve()
    if Path(settings.workspace).resolve() != root:
        settings = settings.model_copy(update={"workspace": str(root)})
    if settings.prompts_dir:
        outside = ["prompts_dir"]
    else:
        chosen = {"out_dir": settings.out_dir, "lora": settings.lora}
        outside = [name for name, folder in chosen.items() if folder
                   and not Path(folder).resolve().is_relative_to(root)]
    if outside:
        raise ServerPathError(f"{', '.join(outside)}: this server writes and reads only inside its own workspace; "
                              "the thread's settings name another folder, so nothing was written")
    return settings


def context_settings(runtime: Runtime[RunContext] | None) -> RunContext:
    """The run context a run was started with (a dict from a server client is validated here)."""
    ctx = getattr(runtime, "context", None) if runtime is not None else None
    if isinstance(ctx, RunContext):
        return ctx
    if isinstance(ctx, dict):
        return RunContext(**ctx)
    return RunContext()
