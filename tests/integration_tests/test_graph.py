"""Whole episodes through the compiled graph, in process."""

import json
import re
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from spiral.graph.workflow import build_graph, checkpoint_serde, graph
from spiral.memory.artifacts import REF_PATTERN, ArtifactStore
from spiral.memory.checkpoints import sqlite_checkpointer
from spiral.vocabulary.config import RunContext
from spiral.vocabulary.state import Ledger


def _run(image, action, workspace, thread="t", checkpointer=None, **settings):
    g = build_graph(checkpointer=checkpointer or InMemorySaver(serde=checkpoint_serde()))
    config = {"configurable": {"thread_id": thread}}
    out = g.invoke({"action": action, "image": str(image)}, config,
                   context=RunContext(workspace=str(workspace), **settings))
    return g, config, out


def _ledger(workspace, state) -> Ledger:
    return ArtifactStore(Path(workspace) / "artifacts").get_model(state["ledger_ref"], Ledger)


def test_module_graph_has_no_checkpointer_and_the_expected_nodes():
    assert graph.checkpointer is None
    assert {"ingest", "plan", "generate", "critique", "review", "refine", "advance", "finalize"} == \
        set(graph.get_graph().nodes) - {"__start__", "__end__"}
    assert build_graph(checkpointer=InMemorySaver()).checkpointer is not None and graph.checkpointer is None


def test_episode_end_to_end(scene_png, tmp_path):
    g, config, out = _run(scene_png, "put the red ball in the bowl then stack the blue cube on the green cube",
                          tmp_path / "ws", difficulty="easy")
    assert out["status"] == "done"
    summary = json.loads(Path(out["summary"]).read_text())
    assert [s["verb"] for s in summary["plan"]] == ["put_in", "stack"]
    assert [o["passed"] for o in summary["outcomes"]] == [True, True]
    assert summary["generator_calls"] == len(summary["attempts"]) == 2
    state = g.get_state(config).values
    assert state["status"] == "done" and state["cursor"] == 2 and state["attempts"] == []
    # the state holds references, never pixels: the start image became an artifact ref
    assert REF_PATTERN.fullmatch(state["image"]) and state["image"].endswith(".npy.zst")
    ledger = _ledger(tmp_path / "ws", state)
    assert ledger.first_frame == state["image"] and len(ledger.outcomes) == 2
    assert ledger.established == ["inside(red_ball, bowl)", "on(blue_cube, green_cube)"]
    size = len(checkpoint_serde().dumps_typed({k: v for k, v in state.items()})[1])
    assert size < 1500, size


def test_goal_already_met_finalizes_without_generating(tmp_path, make_obj):
    from spiral.tools.media import save_png
    from spiral.tools.world.render import render_scene
    from spiral.tools.world.scene import Scene

    scene = Scene(objects=[make_obj("bowl", "bowl", "white", 60, 60), make_obj("red_ball", "ball", "red", 60, 60, "small"),
                           make_obj("blue_cube", "cube", "blue", 20, 110)])
    png = save_png(render_scene(scene), tmp_path / "s.png")
    _, _, out = _run(png, "put all red objects in the bowl", tmp_path / "ws")
    assert out["status"] == "done"
    assert json.loads(Path(out["summary"]).read_text())["generator_calls"] == 0


def test_budgets_bound_the_loop(scene_png, tmp_path):
    _, _, out = _run(scene_png, "put the red ball in the bowl then stack the blue cube on the green cube",
                     tmp_path / "ws", difficulty="hard", max_generator_calls=2, seed=3)
    summary = json.loads(Path(out["summary"]).read_text())
    assert summary["generator_calls"] == 2
    assert out["status"] == "budget_exhausted"  # two calls were not enough for both sub-actions


def test_sqlite_checkpoints_resume_from_the_last_step(scene_png, tmp_path):
    """Interrupt after the first accepted segment; resuming does not redo it."""
    ws = tmp_path / "ws"
    config = {"configurable": {"thread_id": "r"}}
    with sqlite_checkpointer(ws, checkpoint_serde()) as saver:
        g = build_graph(checkpointer=saver)
        g.invoke({"action": "put the red ball in the bowl then stack the blue cube on the green cube",
                  "image": str(scene_png)}, config, context=RunContext(workspace=str(ws), difficulty="easy"),
                 interrupt_after=["advance"])
        first = g.get_state(config).values
        assert first["cursor"] == 1 and len(_ledger(ws, first).outcomes) == 1
    with sqlite_checkpointer(ws, checkpoint_serde()) as saver:  # a new process would do the same
        g = build_graph(checkpointer=saver)
        out = g.invoke(None, config)  # no context: the settings come from the state
        final = g.get_state(config).values
    assert _ledger(ws, final).outcomes[0] == _ledger(ws, first).outcomes[0]
    assert len(_ledger(ws, final).outcomes) == 2 and out["status"] == "done"


def test_grounding_error_surfaces_as_spiral_error(scene_png, tmp_path):
    from spiral.tools.errors import ActionParseError

    with pytest.raises(ActionParseError, match="no purple ball"):
        _run(scene_png, "put the purple ball in the bowl", tmp_path / "ws")


def test_langgraph_json_graph_loads_by_file_path():
    """The server imports ./graph/workflow.py by path, not as a package module."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    spec = json.loads((root / "langgraph.json").read_text())["graphs"]["spiral"]
    path, attr = spec.split(":")
    module_spec = importlib.util.spec_from_file_location("spiral_graph_by_path", root / path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    compiled = getattr(module, attr)
    assert compiled.checkpointer is None and "critique" in compiled.get_graph().nodes


def test_reflective_memory_writes_lessons_and_the_next_episode_starts_with_them(scene_png, tmp_path):
    from spiral.memory.store import LESSONS, Lesson, sqlite_store, write_lessons

    ws = tmp_path / "ws"
    with sqlite_store(ws) as store:
        write_lessons(store, [Lesson(verb="put_in", shape="ball", failure="incomplete", failed_prompt="x",
                                     fixed_prompt="y", fixed_flags=["explicit", "complete", "still"],
                                     text="put_in ball: 'x' failed (incomplete); 'y' worked")])
        g = build_graph(checkpointer=InMemorySaver(), store=store)
        config = {"configurable": {"thread_id": "m"}}
        g.invoke({"action": "put the red ball in the bowl", "image": str(scene_png)}, config,
                 context=RunContext(workspace=str(ws), memory="reflective", difficulty="hard", seed=1))
        state = g.get_state(config).values
        summary = json.loads(Path(state["summary"]).read_text())
        first = summary["attempts"][0]["prompt"]
        assert "all the way" in first and first.endswith("Keep every other object still.")
        assert any("reflective memory: 1 of 1" in n for n in _ledger(ws, state).notes)
        assert len(store.search(LESSONS, limit=100)) >= 1


def test_sqlite_checkpoints_use_small_versions_and_old_threads_keep_theirs(scene_png, tmp_path):
    """New threads get short versions and their values stored once per version; a thread written by plain
    SqliteSaver (its 50-character versions, values inline) resumes under SPIRAL's saver; and time travel inside a
    thread (a branch from a past checkpoint) leaves the other branch readable."""
    import sqlite3

    from langgraph.checkpoint.sqlite import SqliteSaver

    ws = tmp_path / "ws"
    action = "put the red ball in the bowl then stack the blue cube on the green cube"
    context = RunContext(workspace=str(ws), difficulty="easy")
    with sqlite_checkpointer(ws, checkpoint_serde()) as saver:
        g = build_graph(checkpointer=saver)
        g.invoke({"action": action, "image": str(scene_png)}, {"configurable": {"thread_id": "new"}}, context=context)
        latest = saver.get_tuple({"configurable": {"thread_id": "new", "checkpoint_ns": ""}}).checkpoint
        assert all(re.fullmatch(r"\d{6}\.[0-9a-f]{6}", v) for v in latest["channel_versions"].values())
        assert latest["channel_values"]["action"] == action  # read back from checkpoint_blobs
    with sqlite3.connect(ws / "checkpoints.sqlite") as conn:
        assert conn.execute("select count(*) from checkpoint_blobs where thread_id = 'new' and channel = 'action'"
                            ).fetchone()[0] == 1
    with sqlite3.connect(ws / "checkpoints.sqlite", check_same_thread=False) as conn:
        plain = SqliteSaver(conn, serde=checkpoint_serde())
        old = build_graph(checkpointer=plain)
        old.invoke({"action": action, "image": str(scene_png)}, {"configurable": {"thread_id": "old"}},
                   context=context, interrupt_after=["advance"])
        first = plain.get_tuple({"configurable": {"thread_id": "old", "checkpoint_ns": ""}}).checkpoint
        assert all(isinstance(v, str) for v in first["channel_versions"].values())
    with sqlite_checkpointer(ws, checkpoint_serde()) as saver:
        g = build_graph(checkpointer=saver)
        assert g.invoke(None, {"configurable": {"thread_id": "old"}})["status"] == "done"
        # branch the new thread from a past checkpoint in the same thread, with another instruction
        ended = g.get_state({"configurable": {"thread_id": "new"}}).values
        past = next(s for s in g.get_state_history({"configurable": {"thread_id": "new"}}) if s.next == ("generate",))
        branch = g.update_state(past.config, {"instruction": "Put the red ball in the white bowl, all the way."},
                                as_node="refine")
        assert g.invoke(None, branch)["status"] == "done"
        newest = g.get_state({"configurable": {"thread_id": "new"}})
        assert newest.config["configurable"]["checkpoint_id"] != past.config["configurable"]["checkpoint_id"]
        assert newest.values["status"] == "done" and newest.values["cursor"] == 2
        before = g.get_state({"configurable": {"thread_id": "new", "checkpoint_id": latest["id"]}})
        assert before.values == ended  # the first branch's end reads as it was, its versions untouched
