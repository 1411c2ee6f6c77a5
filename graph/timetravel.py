"""Time travel: list a thread's checkpoints, and fork a new thread from one of them.

A fork copies the state at a checkpoint into a new thread (artifacts are
content-addressed, so nothing is copied but references), optionally with a new
instruction for the sub-action at that point; the session then runs it to the end.
"""

from __future__ import annotations

from pydantic import BaseModel

from ..tools.errors import ResumeError
from ..vocabulary.state import EpisodeState

AS_NODE = {"plan": "ingest", "generate": "refine", "critique": "generate", "advance": "critique",
           "refine": "critique", "finalize": "advance"}
"""The node whose fixed or conditional edge leads to each next step."""


class CheckpointSummary(BaseModel):
    checkpoint_id: str
    step: int | None
    next: str
    """The steps that run next, comma-separated, or END."""
    sub_action: int | None
    plan_version: int | None
    attempts: int
    status: str | None


def history(graph, thread_id: str) -> list[CheckpointSummary]:
    rows = []
    for snap in graph.get_state_history({"configurable": {"thread_id": thread_id}}):
        values = snap.values or {}
        rows.append(CheckpointSummary(
            checkpoint_id=snap.config["configurable"]["checkpoint_id"], step=(snap.metadata or {}).get("step"),
            next=",".join(snap.next) or "END", sub_action=values.get("cursor"),
            plan_version=values.get("plan_version"), attempts=len(values.get("attempts") or []),
            status=values.get("status")))
    if not rows:
        raise ResumeError(f"no thread {thread_id!r} in this workspace")
    return rows


def fork_state(graph, thread_id: str, checkpoint_id: str, new_thread: str,
               instruction: str | None = None) -> EpisodeState:
    """Copy the state at `checkpoint_id` into `new_thread` (with a new instruction); returns that state."""
    source = graph.get_state({"configurable": {"thread_id": thread_id, "checkpoint_id": checkpoint_id}})
    if source.metadata is None:
        raise ResumeError(f"no checkpoint {checkpoint_id} in thread {thread_id!r} (see `spiral history {thread_id}`)")
    if not source.values or source.values.get("settings") is None:
        raise ResumeError(f"checkpoint {checkpoint_id} is before the episode's first step, so there is nothing to "
                          "carry into a fork: start a new run instead (`spiral run`), or fork at a later checkpoint")
    if not source.next or source.next[0] not in AS_NODE:
        raise ResumeError(f"cannot fork at a checkpoint whose next step is {source.next or 'the end'}; pick one "
                          "whose next step is plan, generate, critique, refine, advance or finalize")
    if graph.get_state({"configurable": {"thread_id": new_thread}}).values:
        raise ResumeError(f"thread {new_thread!r} already exists")
    values = dict(source.values)
    if instruction:
        values["instruction"] = instruction
    # the fork writes its own video, next to the source's runs
    values["settings"] = values["settings"].model_copy(update={"out_dir": ""})
    config = {"configurable": {"thread_id": new_thread}, "metadata": {"forked_from": f"{thread_id}@{checkpoint_id}"}}
    graph.update_state(config, values, as_node=AS_NODE[source.next[0]])
    return EpisodeState.model_validate(graph.get_state({"configurable": {"thread_id": new_thread}}).values)
