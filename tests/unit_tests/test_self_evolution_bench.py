"""The arms' comparison (bench/self_evolution.py): paired over the same segments and tasks, against the control."""

from __future__ import annotations

import json

import pytest

from spiral.bench.self_evolution import ArmSegments, arm_episodes, summarise, table
from spiral.tools.errors import InputError


def _row(task: str, seed: int, success: bool, model: str = "shipped", method: str = "spiral") -> str:
    return json.dumps({"task_id": task, "category": "pick_place", "horizon": 1, "seed": seed, "method": method,
                       "model": model, "success": success, "pixel_mae": 1.0, "psnr": 30.0, "generator_calls": 3,
                       "wall_s": 1.0})


def test_an_arm_is_compared_with_the_control_segment_by_segment_and_task_by_task(tmp_path):
    control = ArmSegments(label="control", lora="c", judge={i: i < 2 for i in range(20)},
                          critic={i: i < 2 for i in range(20)})
    arm = ArmSegments(label="self-evolution", lora="s", judge={i: i < 8 for i in range(20)},
                      critic={i: i < 10 for i in range(20)})
    (tmp_path / "c.jsonl").write_text("\n".join(_row(f"t{t}", s, t == 0) for t in range(4) for s in range(3)))
    (tmp_path / "s.jsonl").write_text("\n".join([_row(f"t{t}", s, t < 2 and s < 2, model="s") for t in range(4)
                                                 for s in range(3)] + [_row("t0", 0, False, "s", "open-loop")]))
    episodes = {"control": arm_episodes("control", tmp_path / "c.jsonl"), "self-evolution":
                arm_episodes("self-evolution", tmp_path / "s.jsonl")}
    assert episodes["self-evolution"].episodes == 12  # the open-loop row is not SPIRAL's
    rows = summarise([control, arm], episodes, "control")
    assert rows[0].segment_gain is None and rows[0].episode_gain is None
    gain = rows[1].segment_gain
    assert (rows[1].judge_right, rows[1].critic_passed, rows[1].segments) == (8, 10, 20)
    assert gain.mean == pytest.approx(0.30) and gain.p_value < 0.05  # 6 segments gained, none lost
    # tasks: t0 1 -> 2/3, t1 0 -> 2/3, t2 and t3 unchanged
    assert rows[1].episode_gain.mean == pytest.approx((-1 / 3 + 2 / 3) / 4)
    assert rows[1].episode_success.mean == pytest.approx((2 / 3 + 2 / 3) / 4)
    assert "| self-evolution | 8/20 | 10/20 | +30.0 [" in table(rows, "control")


def test_arms_on_different_segments_or_a_mixed_results_file_are_refused(tmp_path):
    control = ArmSegments(label="control", lora="", judge={0: True, 1: False}, critic={0: True, 1: False})
    other = ArmSegments(label="x", lora="", judge={0: True, 2: False}, critic={0: True, 2: False})
    with pytest.raises(InputError, match="the same segments or tasks"):
        summarise([control, other], {}, "control")
    with pytest.raises(InputError, match="no arm of that name"):
        summarise([control], {}, "base")
    (tmp_path / "mixed.jsonl").write_text(_row("t0", 0, True) + "\n" + _row("t0", 0, True, model="other"))
    with pytest.raises(InputError, match="2 models"):
        arm_episodes("x", tmp_path / "mixed.jsonl")
