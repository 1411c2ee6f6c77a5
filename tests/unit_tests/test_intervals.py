"""Intervals over tasks and paired mechanism gains, as the tabletop-tiny section reports them."""

import pytest

from spiral.bench.intervals import bootstrap_mean, paired_difference
from spiral.bench.learned import LearnedResult
from spiral.bench.learned_report import cost_table, learned_section, mechanism_gains


def test_a_bootstrap_interval_holds_the_mean_and_narrows_with_more_tasks():
    few = bootstrap_mean([1, 0] * 5)
    many = bootstrap_mean([1, 0] * 50)
    assert few.mean == many.mean == 0.5
    assert few.low < 0.5 < few.high and many.low < 0.5 < many.high
    assert (many.high - many.low) < 0.6 * (few.high - few.low)  # ~1/sqrt(10) as wide


def test_all_failures_give_a_zero_width_interval():
    assert bootstrap_mean([0.0] * 30).text(100) == "0.0 [0.0, 0.0]"


def test_the_paired_test_finds_a_consistent_gain_and_not_a_coin_flip():
    gain = paired_difference([1] * 12 + [0] * 8, [0] * 20)
    assert gain.mean == pytest.approx(0.6) and gain.low > 0
    assert gain.p_value == pytest.approx(2 / 2**12, rel=0.5)  # 12 tasks moved, all one way: exact p = 2^-11
    noise = paired_difference([1, 0, 1, 0, 1, 0], [0, 1, 0, 1, 0, 1])
    assert noise.mean == 0 and noise.p_value == 1.0 and noise.low < 0 < noise.high


def test_pairs_must_cover_the_same_tasks():
    with pytest.raises(ValueError, match="same tasks"):
        paired_difference([1, 0], [1])


def _row(task: int, seed: int, method: str, success: bool, wall: float = 2.0, gen: float = 1.9,
         calls: int = 1) -> LearnedResult:
    return LearnedResult(task_id=f"t{task}", category="c", horizon=1, seed=seed, method=method, model="m",
                         success=success, pixel_mae=1.0, psnr=20.0, generator_calls=calls, wall_s=wall,
                         generator_s=gen)


def test_the_gain_is_paired_by_task_and_the_cost_table_is_the_share_outside_the_generator():
    rows = [_row(t, s, "open-loop", False) for t in range(10) for s in range(3)]
    rows += [_row(t, s, "decompose", t < 5, wall=4.0, gen=3.6, calls=2) for t in range(10) for s in range(3)]
    gains = mechanism_gains(rows)
    assert len(gains) == 1 and gains[0].startswith("| decomposition (sub-actions, each generated once) | +50.0 [")
    assert gains[0].endswith("p = 0.062 | 10 |")  # 5 of 10 tasks up, none down: exact p = 2 * 2^-5
    table = cost_table(rows).splitlines()
    assert table[2] == "| open-loop | 2.00 | 1.90 | 5.0 % | 100 |"
    assert table[3] == "| decompose | 4.00 | 3.60 | 10.0 % | 200 |"
    section = learned_section(rows, "spiral bench --suite tabletop-tiny", "test weights")
    assert "| decompose | 50.0 [" in section and "| open-loop | 0.0 [0.0, 0.0] |" in section


def test_rows_from_before_generator_seconds_were_recorded_are_left_out_of_the_cost_table():
    assert cost_table([_row(0, 0, "spiral", True, gen=0.0)]) == ""
