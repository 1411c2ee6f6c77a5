"""SPIRAL's SQLite checkpointer: values once per version, compressed rows, forks and older threads intact."""

import operator
import sqlite3
from typing import Annotated, TypedDict

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from spiral.memory.gc import _refs_in_sqlite
from spiral.memory.sqlite import connect
from spiral.memory.sqlite_saver import SpiralSqliteSaver

CONSTANT = "put every ball in the bowl, " * 40  # a long value that never changes after the first step


class State(TypedDict):
    action: str
    steps: Annotated[list[int], operator.add]


def graph(saver):
    g = StateGraph(State)
    g.add_node("one", lambda s: {"steps": [1]})
    g.add_node("two", lambda s: {"steps": [2]})
    g.add_edge(START, "one")
    g.add_edge("one", "two")
    g.add_edge("two", END)
    return g.compile(checkpointer=saver)


def test_a_constant_value_is_stored_once_and_every_checkpoint_reads_back_whole(tmp_path):
    conn = connect(tmp_path / "c.sqlite")
    app = graph(SpiralSqliteSaver(conn))
    config = {"configurable": {"thread_id": "t"}}
    app.invoke({"action": CONSTANT, "steps": []}, config)
    history = list(app.get_state_history(config))
    assert [len(h.values["steps"]) for h in history] == [2, 1, 0, 0]
    assert all(h.values["action"] == CONSTANT for h in history[:3])
    stored = conn.execute("select count(*) from checkpoint_blobs where channel = 'action'").fetchone()[0]
    assert stored == 1
    rows = conn.execute("select sum(length(checkpoint)) from checkpoints").fetchone()[0]
    assert rows < len(CONSTANT)  # no row carries the action


def test_a_fork_from_an_old_checkpoint_leaves_the_other_branch_as_it_was(tmp_path):
    app = graph(SpiralSqliteSaver(connect(tmp_path / "c.sqlite")))
    config = {"configurable": {"thread_id": "t"}}
    app.invoke({"action": "first", "steps": []}, config)
    latest = app.get_state(config)
    after_one = next(h for h in app.get_state_history(config) if h.values.get("steps") == [1])
    forked = app.update_state(after_one.config, {"action": "second", "steps": [7]})
    app.invoke(None, forked)
    assert app.get_state(config).values == {"action": "second", "steps": [1, 7, 2]}
    assert app.get_state(latest.config).values == {"action": "first", "steps": [1, 2]}  # same versions, other values


def test_a_thread_written_with_integer_versions_inline_reads_and_goes_on(tmp_path):
    class Before(SqliteSaver):  # SPIRAL's saver before this one: integer versions, values inline
        def get_next_version(self, current, channel=None):
            return 1 if current is None else current + 1

    path = tmp_path / "c.sqlite"
    config = {"configurable": {"thread_id": "old"}}
    with sqlite3.connect(path, check_same_thread=False) as conn:
        old = graph(Before(conn))
        old.invoke({"action": "a", "steps": []}, config, interrupt_after=["one"])
    app = graph(SpiralSqliteSaver(connect(path)))
    assert app.get_state(config).values == {"action": "a", "steps": [1]}
    app.invoke(None, config)
    assert app.get_state(config).values == {"action": "a", "steps": [1, 2]}


def test_gc_finds_references_inside_compressed_values(tmp_path):
    ref = "sha256:" + "ab" * 32 + ".npz"
    conn = connect(tmp_path / "c.sqlite")
    graph(SpiralSqliteSaver(conn)).invoke({"action": CONSTANT + ref, "steps": []}, {"configurable": {"thread_id": "t"}})
    raw = conn.execute("select blob from checkpoint_blobs where channel = 'action'").fetchone()[0]
    assert ref.encode() not in raw  # compressed: a byte scan alone would miss it
    conn.close()
    assert ref in _refs_in_sqlite(tmp_path / "c.sqlite")
