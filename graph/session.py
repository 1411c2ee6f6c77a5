"""The session driver: run, stream, review and resume episodes in one workspace.

The one way the CLI, the bench and Python callers drive the graph:

```python
with Session(".spiral") as session:
    run = session.start("put all red objects in the bowl", "start.png", RunContext(seed=1))
    while run.waiting is not None:                       # RunContext(review=True) pauses before acceptances
        run = session.resume(run.thread_id, ReviewDecision(decision="approve"))
    print(run.status, run.state.video)
```

`start` checks everything the first steps would reject before a thread
exists (preflight), stores the start frame and streams the graph; `resume`
continues a thread from its last checkpoint with the settings saved in its
state (a crash, a kill -9, a paused review, an LLM server that was down).
Progress reaches an `observer` as typed events; a `reviewer` answers review
pauses (or returns None to leave the run paused).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from langgraph.types import Command
from pydantic import BaseModel, ConfigDict, ValidationError, validate_call

from ..memory.checkpoints import has_checkpoints, where
from ..memory.durable import deferred_durability
from ..memory.folders import (
    check_thread_id,
)
from ..memory.workspace import Workspace
from ..nodes.preflight import preflight
from ..tools.errors import InputError, ResumeError, storage_error
from ..vocabulary.config import RunContext
from ..vocabulary.events import (
    AttemptJudged,
    AttemptReviewed,
    CritiqueEvent,
    EpisodeFinished,
    EpisodeStarted,
    GeneratorProgress,
    InstructionRefined,
    Observer,
    PlanMade,
    ReviewDecision,
    ReviewRequest,
    SegmentReady,
    SessionEvent,
)
from ..vocabulary.state import EpisodeState, Plan
from .timetravel import CheckpointSummary, fork_state, history
from .workflow import build_graph, checkpoint_serde

Reviewer = Callable[[ReviewRequest], ReviewDecision | None]
"""Answers a review pause; None leaves the run paused (answer later with `Session.resume`)."""
DURABILITY = "sync"
"""Each step's checkpoint is committed before the next step starts. LangGraph's default ("async")
saves it while the next step runs: a kill -9 or a full disk in that window leaves writes stored
under a checkpoint that never was, and a thread that looks finished but is not. A checkpoint
costs a few milliseconds; a segment on a real backbone costs seconds."""
CUSTOM_EVENTS = {"generator_progress": GeneratorProgress, "segment": SegmentReady, "critique": CritiqueEvent}


class EpisodeRun(BaseModel):
    """Where an episode stands after the session drove it as far as it could."""

    thread_id: str
    state: EpisodeState
    waiting: ReviewRequest | None = None
    """The review the run is paused at, if any."""

    @property
    def finished(self) -> bool:
        return self.waiting is None and bool(self.state.summary)

    @property
    def status(self) -> str:
        return "paused" if self.waiting is not None else self.state.status


def _checked(method):
    """A public method whose arguments are checked against its annotations first (pydantic's validate_call,
    no coercion of strings to numbers), with one InputError naming the argument instead of a failure deep in."""
    validated = validate_call(config=ConfigDict(arbitrary_types_allowed=True, strict=True))(method)

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        try:
            return validated(self, *args, **kwargs)
        except ValidationError as exc:
            error = exc.errors()[0]
            names = list(inspect.signature(method).parameters)
            where = ".".join(names[part] if isinstance(part, int) and part < len(names) else str(part)
                             for part in error["loc"])
            raise InputError(f"Session.{method.__name__}: {where}: {error['msg']} (got {error.get('input')!r:.80})") \
                from None

    return call


class Session:
    """Episodes in one workspace: SQLite checkpoints there (or PostgreSQL with SPIRAL_DATABASE_URI),
    the reflective-memory store opened when a run uses it (in `lessons`, default the workspace)."""

    def __init__(self, workspace: str | Path, lessons: str | Path | None = None) -> None:
        self.space = Workspace.of(workspace)
        self.workspace = str(self.space)
        self.writable = self.space.writable
        """A read-only workspace still answers `state` and `history`; running in it says why it cannot."""
        self.lessons_dir = str(lessons) if lessons is not None else self.workspace
        self._traces_path = self.space.traces_path
        self._holds_traces = False
        self._stack = contextlib.ExitStack()
        self._saver: Any = None
        self._store: Any = None
        # this session's savers wait for the artifacts before each commit, so writes need not wait
        if self.space.artifacts.is_local:  # an object store's PUT is durable when it returns
            self._stack.enter_context(deferred_durability(self.space.artifacts.root))

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()
        self._saver = self._store = None
        if self._holds_traces:
            self._holds_traces = False
            self.space.release_traces()

    # -- the graph -----------------------------------------------------------
    def _checkpointer(self) -> Any:
        if self._saver is None:
            self._saver = self._stack.enter_context(self.space.checkpointer(checkpoint_serde(),
                                                                      read_only=not self.writable))
        return self._saver

    def _graph(self, settings: RunContext | None = None):
        store = None
        if settings is not None and settings.memory == "reflective":
            if self._store is None:
                self._store = self._stack.enter_context(self.space.lessons(self.lessons_dir))
            store = self._store
        return build_graph(checkpointer=self._checkpointer(), store=store)

    @_checked
    def state(self, thread_id: str) -> EpisodeState | None:
        """The thread's latest state, or None when there is no such thread."""
        if not has_checkpoints(self.workspace):
            return None
        values = self._graph().get_state(_config(thread_id)).values
        return EpisodeState.model_validate(values) if _started(values) else None

    # -- running -------------------------------------------------------------
    @_checked
    def start(self, action: str, image: str, context: RunContext, thread_id: str | None = None, *,
              observer: Observer | None = None, reviewer: Reviewer | None = None) -> EpisodeRun:
        """Check, then run a new episode until it finishes or pauses for a review nobody answered."""
        context = context.model_copy(update={"workspace": self.workspace})
        thread_id = check_thread_id(thread_id or f"run-{uuid.uuid4().hex[:8]}")
        frame = preflight(image, action, context)
        self.space.prepare_for_writing()
        existing = self.state(thread_id)
        if existing is not None and existing.settings is not None:  # without settings nothing was done: start over
            raise InputError(f"thread {thread_id!r} already exists in {where(self.workspace)}; "
                             f"use `spiral resume {thread_id}` or another --thread-id")
        start_ref = self.space.artifacts.put_frame(frame)
        if observer is not None:
            observer(EpisodeStarted(thread_id=thread_id, workspace=self.workspace))
        return self._drive(self._graph(context), {"action": action, "image": start_ref}, thread_id, context,
                           observer, reviewer)

    @_checked
    def resume(self, thread_id: str, answer: ReviewDecision | None = None, *, observer: Observer | None = None,
               reviewer: Reviewer | None = None) -> EpisodeRun:
        """Continue a thread from its last checkpoint: finish it, or answer the review it waits at."""
        if not has_checkpoints(self.workspace):
            raise ResumeError(f"no checkpoints in {self.workspace}; pass the --workspace the run used")
        self.space.prepare_for_writing()
        snapshot = self._graph().get_state(_config(thread_id))
        if not snapshot.values:
            raise ResumeError(f"no thread {thread_id!r} in {where(self.workspace)}")
        if not _started(snapshot.values):
            raise ResumeError(f"thread {thread_id!r} stopped before its first step, so nothing was done; start it "
                              "again with the same --thread-id")
        state = EpisodeState.model_validate(snapshot.values)
        asked = [i.value for task in snapshot.tasks for i in task.interrupts]
        if answer is not None and not asked:
            raise InputError(f"thread {thread_id!r} is not waiting for a review")
        if not snapshot.next and state.summary:  # finalize ran: the graph says it is done
            return EpisodeRun(thread_id=thread_id, state=state)
        if state.settings is None:
            raise ResumeError(f"thread {thread_id!r} stopped before its first step finished, so nothing was done "
                              "and its settings were not saved; start it again with the same --thread-id")
        if asked and answer is None:
            request = ReviewRequest.model_validate(asked[0])
            answer = reviewer(request) if reviewer is not None else None
            if answer is None:
                return EpisodeRun(thread_id=thread_id, state=state, waiting=request)
        payload = Command(resume=answer.model_dump()) if asked else None
        run = self._drive(self._graph(state.settings), payload, thread_id, state.settings, observer, reviewer)
        if not run.finished and run.waiting is None:
            raise ResumeError(f"thread {thread_id!r} has nothing left to run but never finished (status "
                              f"{run.state.status!r}); fork it from an earlier checkpoint (`spiral history "
                              f"{thread_id}`)")
        return run

    def _drive(self, graph, payload: Any, thread_id: str, context: RunContext, observer: Observer | None,
               reviewer: Reviewer | None) -> EpisodeRun:
        if not self._holds_traces:  # the nodes' connection, closed when the last session using it closes
            self.space.hold_traces()
            self._holds_traces = True
        config = _config(thread_id)
        while True:
            try:
                with self.space.lease():
                    asked = list(self._stream(graph, payload, config, context, observer))
            except (OSError, sqlite3.Error) as exc:  # a full disk, a folder made read-only mid-run
                error = storage_error(exc, self.workspace)
                if error is None:
                    raise
                raise error from exc
            state = EpisodeState.model_validate(graph.get_state(config).values)
            if not asked:
                return EpisodeRun(thread_id=thread_id, state=state)
            request = ReviewRequest.model_validate(asked[0])
            answer = reviewer(request) if reviewer is not None else None
            if answer is None:
                return EpisodeRun(thread_id=thread_id, state=state, waiting=request)
            payload = Command(resume=answer.model_dump())

    def _stream(self, graph, payload: Any, config: dict, context: RunContext,
                observer: Observer | None) -> Iterator[dict]:
        """Run the graph; yields the payloads of the interrupts it stops at; tells the observer what happens."""
        modes = ["updates", "custom"] if observer is not None else ["updates"]
        for mode, chunk in graph.stream(payload, config, context=context, stream_mode=modes, durability=DURABILITY):
            if mode == "custom":
                assert observer is not None
                event = CUSTOM_EVENTS.get(chunk.get("event", ""))
                if event is not None:
                    observer(event.model_validate(chunk))
                continue
            for node, delta in chunk.items():
                if node == "__interrupt__":
                    yield from (i.value for i in delta)
                elif observer is not None and isinstance(delta, dict):
                    event = self._event(node, delta)
                    if event is not None:
                        observer(event)

    def _event(self, node: str, delta: dict) -> SessionEvent | None:
        if node == "plan" and delta.get("plan_ref"):
            plan = self.space.artifacts.get_model(delta["plan_ref"], Plan)
            return PlanMade(plan=plan, cursor=delta.get("cursor", 0))
        if node == "critique":
            return AttemptJudged(attempt=delta["attempts"])
        if node == "refine":
            return InstructionRefined(instruction=delta["instruction"])
        if node == "review":
            return AttemptReviewed(attempt=delta["attempts"])
        if node == "finalize":
            return EpisodeFinished(status=delta["status"], video=delta["video"], summary=delta["summary"])
        return None

    # -- time travel ---------------------------------------------------------
    @_checked
    def history(self, thread_id: str) -> list[CheckpointSummary]:
        if not has_checkpoints(self.workspace):
            raise ResumeError(f"no checkpoints in {self.workspace}; pass the --workspace the run used")
        return history(self._graph(), thread_id)

    @_checked
    def fork(self, thread_id: str, checkpoint_id: str, new_thread: str | None = None, instruction: str | None = None,
             *, observer: Observer | None = None) -> EpisodeRun:
        """Copy the state at a past checkpoint into a new thread (with another instruction) and run it."""
        if not has_checkpoints(self.workspace):
            raise ResumeError(f"no checkpoints in {self.workspace}; pass the --workspace the run used")
        self.space.prepare_for_writing()
        new_thread = check_thread_id(new_thread or f"{thread_id}-fork-{uuid.uuid4().hex[:6]}")
        state = fork_state(self._graph(), thread_id, checkpoint_id, new_thread, instruction)
        self._copy_attempt_records(thread_id, new_thread, state)
        return self._drive(self._graph(state.settings), None, new_thread, state.run_settings(), observer, None)

    def _copy_attempt_records(self, source: str, fork: str, state: EpisodeState) -> None:
        """The forked state's attempts were made in the source thread: the fork's traces get their records
        too, so judging or reviewing them in the fork has a row to update."""
        traces = self.space.traces()
        tries = {(a.plan_version, a.sub_action_index, a.try_index) for a in state.attempts}
        for record in traces.attempts(source):  # every sample of each try (group rollouts record several)
            if (record.plan_version, record.sub_action_index, record.try_index) in tries:
                traces.record_attempt(record.model_copy(update={"thread_id": fork}))


def _started(values: dict) -> bool:
    """Whether a thread's checkpoint holds an episode (the first checkpoint, saved before the input is
    applied, holds only the channels' defaults)."""
    return bool(values) and "action" in values


def _config(thread_id: str) -> dict:
    return {"configurable": {"thread_id": thread_id}}
