"""The startup benchmark measures fresh processes, and a simulated episode loads no heavy package."""

import pytest

from spiral.bench.startup import startup_section, startup_times

pytestmark = pytest.mark.e2e


def test_startup_bench_times_three_commands_and_the_sim_path_imports_no_torch():
    result = startup_times(repeats=1)
    assert [f.what for f in result.figures] == ["`spiral --help`", "a grammar error", "the demo's first line"]
    assert all(0 < f.median_s < 60 for f in result.figures)
    assert result.heavy_on_sim_path == []
    assert "none of torch, diffusers, transformers" in startup_section(result, "spiral bench --suite startup")
