"""What LangGraph's steps cost with SPIRAL's state schema instead of the floor's one integer.

`python -m spiral.bench.overhead_schema` runs the overhead floor's graph shape (one node looping, each step
checkpointed with `durability="sync"` on SPIRAL's SQLite saver) twice: with a one-integer TypedDict state,
and with `EpisodeState` (the pydantic model every SPIRAL node receives), counting in one of its fields.
Nothing else differs, so the gap is what the state schema itself costs per step.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

from ..graph.session import DURABILITY
from ..memory.checkpoints import sqlite_checkpointer
from ..vocabulary.state import EpisodeState


class Counter(TypedDict):
    n: int


def _count(state: Any) -> int:
    return state["n"] if isinstance(state, dict) else state.generator_calls


def ms_per_step(schema: type, steps: int = 5, episodes: int = 100) -> float:
    """Milliseconds per checkpointed step of `episodes` runs of `steps` steps each."""
    field = "n" if schema is Counter else "generator_calls"
    builder = StateGraph(schema)
    builder.add_node("step", lambda state: {field: _count(state) + 1})
    builder.add_edge(START, "step")
    builder.add_conditional_edges("step", lambda state: "step" if _count(state) < steps else END)
    start = {"n": 0} if schema is Counter else {"action": "put the red cube in the bowl",
                                                "image": "sha256:" + "0" * 64 + ".npy.zst"}
    workspace = Path(tempfile.mkdtemp(prefix="spiral-schema-"))
    try:
        with sqlite_checkpointer(workspace) as saver:
            graph = builder.compile().copy(update={"checkpointer": saver})
            graph.invoke(start, {"configurable": {"thread_id": "warm"}}, durability=DURABILITY)
            t0 = time.perf_counter()
            for i in range(episodes):
                graph.invoke(start, {"configurable": {"thread_id": f"t{i}"}}, durability=DURABILITY)
            return 1000 * (time.perf_counter() - t0) / (episodes * steps)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def main(repeats: int = 3) -> None:
    """Alternating runs; the median of each."""
    plain, pydantic = [], []
    for _ in range(repeats):
        plain.append(ms_per_step(Counter))
        pydantic.append(ms_per_step(EpisodeState))
    plain.sort()
    pydantic.sort()
    a, b = plain[len(plain) // 2], pydantic[len(pydantic) // 2]
    print("| state | ms per checkpointed step |\n| --- | --- |")
    print(f"| one integer (TypedDict, the floor's) | {a:.2f} |\n| `EpisodeState` (pydantic, SPIRAL's) | {b:.2f} |")
    print(f"\nSPIRAL's schema costs {100 * (b / a - 1):+.0f} % per step.")


if __name__ == "__main__":
    main()
