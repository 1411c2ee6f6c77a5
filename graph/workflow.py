"""The SPIRAL state machine: ingest → plan → generate → critique → [review] → (refine → generate)* → advance … → finalize.

The module-level `graph` is compiled once per process, without a
checkpointer, so that LangGraph Studio and the server inject their own
(langgraph.json points here). `build_graph(checkpointer=..., store=...)` is
what the session driver, scripts and tests call: a copy of that compiled graph
bound to their checkpointer and store, which costs nothing to make.
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel

from spiral.graph.routing import after_advance, after_critique, after_plan, after_review
from spiral.nodes.advance import advance
from spiral.nodes.context import leased
from spiral.nodes.critique import critique
from spiral.nodes.finalize import finalize
from spiral.nodes.generate import generate
from spiral.nodes.ingest import ingest
from spiral.nodes.plan import plan
from spiral.nodes.refine import refine
from spiral.nodes.review import review

# Absolute imports: the LangGraph server loads this file by path (langgraph.json),
# where relative imports have no package to be relative to.
from spiral.vocabulary import state as state_module
from spiral.vocabulary.config import RunContext
from spiral.vocabulary.state import EpisodeInput, EpisodeOutput, EpisodeState


def checkpoint_serde() -> JsonPlusSerializer:
    """A serializer that lets exactly the state's own pydantic types out of a checkpoint."""
    allowed = [(cls.__module__, cls.__name__) for cls in vars(state_module).values()
               if isinstance(cls, type) and issubclass(cls, BaseModel) and cls.__module__ == state_module.__name__]
    allowed.append((RunContext.__module__, RunContext.__name__))
    return JsonPlusSerializer(allowed_msgpack_modules=allowed)


def compile_graph():
    builder = StateGraph(EpisodeState, context_schema=RunContext, input_schema=EpisodeInput,
                         output_schema=EpisodeOutput)
    builder.add_node("ingest", leased(ingest))
    builder.add_node("plan", leased(plan))
    builder.add_node("generate", leased(generate))
    builder.add_node("critique", leased(critique))
    builder.add_node("review", leased(review))
    builder.add_node("refine", leased(refine))
    builder.add_node("advance", leased(advance))
    builder.add_node("finalize", leased(finalize))
    builder.add_edge(START, "ingest")
    builder.add_edge("ingest", "plan")
    builder.add_conditional_edges("plan", after_plan)
    builder.add_edge("generate", "critique")
    builder.add_conditional_edges("critique", after_critique)
    builder.add_conditional_edges("review", after_review)
    builder.add_edge("refine", "generate")
    builder.add_conditional_edges("advance", after_advance)
    builder.add_edge("finalize", END)
    return builder.compile(name="spiral")


graph = compile_graph()


def build_graph(checkpointer: Any = None, store: Any = None):
    """The compiled graph bound to a checkpointer (episode memory) and a store (reflective memory)."""
    return graph.copy(update={"checkpointer": checkpointer, "store": store})
