"""Group rollouts in the graph: G samples per try from the same frame and instruction, all judged and
recorded, the best passing one kept (GRPO's groups, and best-of-G at inference)."""

import json
from pathlib import Path

import pytest

from spiral.graph.session import Session
from spiral.memory.traces import TraceDB
from spiral.vocabulary.config import RunContext

pytestmark = pytest.mark.e2e


def test_each_try_samples_a_group_and_goes_on_with_its_best(tmp_path, scene_png):
    context = RunContext(group_size=3, seed=4, write_video=False, workspace=str(tmp_path / "ws"))
    with Session(tmp_path / "ws") as session:
        run = session.start("put the red ball in the bowl, then put the blue cube in the bowl", str(scene_png),
                            context, "grouped")
    state = run.state
    rows = TraceDB.open(tmp_path / "ws" / "traces.sqlite").attempts("grouped")
    tries = {}
    for row in rows:
        tries.setdefault((row.plan_version, row.sub_action_index, row.try_index), []).append(row)
    assert state.generator_calls == 3 * len(tries) == len(rows)
    for group in tries.values():
        assert [r.sample for r in group] == [0, 1, 2] and {r.group_size for r in group} == {3}
        assert len({r.seed for r in group}) == 3 and len({r.prompt for r in group}) == 1
        assert len({r.conditioning_frame for r in group}) == 1
        [chosen] = [r for r in group if r.chosen]
        best = max(group, key=lambda r: (bool(r.passed), sum(r.scores.values()) / len(r.scores), -r.sample))
        assert chosen.sample == best.sample and all(r.judged for r in group)
    assert state.status == "done"
    summary = json.loads(Path(state.summary).read_text())
    assert {o["segment"] for o in summary["outcomes"]} <= {r.segment for r in rows if r.chosen}
    assert len(summary["attempts"]) == len(tries)  # the summary lists the tries, a group's others are traces only


def test_group_size_one_keeps_the_seeds_of_before(tmp_path, scene_png):
    """Sample 0's seed is the seed a try had before groups existed: benchmark figures do not move."""
    from spiral.nodes.generate import derive_seed

    assert derive_seed(0, 1, 2, 0) == derive_seed(0, 1, 2, 0, sample=0) != derive_seed(0, 1, 2, 0, sample=1)
    context = RunContext(seed=4, write_video=False, workspace=str(tmp_path / "ws"))
    with Session(tmp_path / "ws") as session:
        run = session.start("put the red ball in the bowl", str(scene_png), context, "single")
    rows = TraceDB.open(tmp_path / "ws" / "traces.sqlite").attempts("single")
    assert [(r.sample, r.group_size, r.chosen) for r in rows] == [(0, 1, True)] * len(rows)
    assert [r.seed for r in rows] == [derive_seed(4, r.sub_action_index, r.try_index, r.plan_version) for r in rows]
    assert run.state.generator_calls == len(rows)
