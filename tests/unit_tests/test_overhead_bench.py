"""The overhead benchmarks measure the work they say they measure."""

import sqlite3

from spiral.bench import overhead_schema
from spiral.bench.overhead import loop_overhead, overhead_section


def test_the_schema_diagnostic_checkpoints_every_step_of_both_graphs(monkeypatch, tmp_path):
    folders = iter([tmp_path / "plain", tmp_path / "pydantic"])
    monkeypatch.setattr(overhead_schema.tempfile, "mkdtemp", lambda prefix: str(next(folders)))
    monkeypatch.setattr(overhead_schema.shutil, "rmtree", lambda *a, **k: None)  # keep them to count
    for schema in (overhead_schema.Counter, overhead_schema.EpisodeState):
        assert overhead_schema.ms_per_step(schema, steps=3, episodes=2) > 0
    for name in ("plain", "pydantic"):
        with sqlite3.connect(tmp_path / name / "checkpoints.sqlite") as conn:
            per_thread = dict(conn.execute("select thread_id, count(*) from checkpoints group by thread_id"))
        # the input, the step that applies it, then one checkpoint per node step
        assert per_thread == {"warm": 5, "t0": 5, "t1": 5}, name


def test_the_loop_overhead_counts_every_call_and_names_every_row():
    result = loop_overhead(size=2, repeats=1)
    assert result.episodes == 2 and result.generator_calls >= 2
    assert result.checkpointed_steps > 2 * result.episodes and result.floor_s > 0
    assert 0 < result.component_s["generator"] < result.wall_s and result.component_s["perception"] > 0
    text = overhead_section(result, "spiral bench --suite overhead --size 2")
    assert f"{result.generator_calls} generator calls" in text and "| **outside the generator** |" in text
