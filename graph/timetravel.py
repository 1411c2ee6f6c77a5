"""Time travel: list a thread's checkpoints, and fork a new thread from one of them.

A fork copies the state at a checkpoint into a new thread (artifacts are
content-addressed, so nothing is copied but references), optionally with a new
instruction for the sub-action at that point, and runs it to the end.
"""

from __future__ import annotations

from ..tools.errors import ResumeError

# the node whose fixed or conditional edge leads to each next step
AS_NODE = {"generate": "refine", "critique": "generate", "advance": "critique", "refine": "critique",
           "finalize": "advance"}


def history(graph, thread_id: str) -> list[dict]:
    rows = []
    for snap in graph.get_state_history({"configurable": {"thread_id": thread_id}}):
        values = snap.values or {}
        rows.append({"checkpoint_id": snap.config["configurable"]["checkpoint_id"],
                     "step": (snap.metadata or {}).get("step"), "next": ",".join(snap.next) or "END",
                     "sub_action": values.get("cursor"), "plan_version": values.get("plan_version"),
                     "attempts": len(values.get("attempts") or []), "status": values.get("status")})
    if not rows:
        raise ResumeError(f"no thread {thread_id!r} in this workspace")
    return rows


def fork(graph, thread_id: str, checkpoint_id: str, new_thread: str, instruction: str | None = None) -> dict:
    """Copy the state at `checkpoint_id` into `new_thread` (with a new instruction) and return its config."""
    source = graph.get_state({"configurable": {"thread_id": thread_id, "checkpoint_id": checkpoint_id}})
    if not source.values:
        raise ResumeError(f"no checkpoint {checkpoint_id} in thread {thread_id!r} (see `spiral history {thread_id}`)")
    if not source.next or source.next[0] not in AS_NODE:
        raise ResumeError(f"cannot fork at a checkpoint whose next step is {source.next or 'the end'}; pick one "
                          "whose next step is generate, critique, refine, advance or finalize")
    if graph.get_state({"configurable": {"thread_id": new_thread}}).values:
        raise ResumeError(f"thread {new_thread!r} already exists")
    values = dict(source.values)
    if instruction:
        values["instruction"] = instruction
    if values.get("settings") is not None:  # the fork writes its own video, next to the source's runs
        values["settings"] = values["settings"].model_copy(update={"out_dir": ""})
    settings = (source.metadata or {}).get("spiral_settings")
    config = {"configurable": {"thread_id": new_thread},
              "metadata": {"forked_from": f"{thread_id}@{checkpoint_id}",
                           **({"spiral_settings": settings} if settings else {})}}
    graph.update_state(config, values, as_node=AS_NODE[source.next[0]])
    return config
