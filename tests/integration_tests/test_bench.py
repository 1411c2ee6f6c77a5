"""The benchmark runner, report and dataset export."""

import json
import subprocess
import sys

import pytest

from spiral.bench import runner
from spiral.bench.runner import ResultsTable, run_bench

pytestmark = pytest.mark.e2e
FIELDS = ("success", "completion", "fidelity", "temporal", "subject_consistency", "background_consistency",
          "motion_smoothness", "flicker", "generator_calls", "critic_tp", "critic_fp", "critic_fn", "critic_tn")


def _numbers(table, methods):
    return sorted((r.method, r.task_id, r.seed, *(getattr(r, f) for f in FIELDS))
                  for r in table.rows("test", "medium", methods))


def test_parallel_runner_gives_the_same_numbers_as_serial(tmp_path):
    methods = ["open-loop", "best-of-n", "spiral", "spiral-no-critic"]
    serial = run_bench(methods, size=5, seeds=1, workers=1, results=tmp_path / "s.sqlite", progress=False)
    parallel = run_bench(methods, size=5, seeds=1, workers=2, results=tmp_path / "p.sqlite", progress=False)
    assert _numbers(serial, methods) == _numbers(parallel, methods)
    rows = serial.rows("test", "medium", methods)
    assert len(rows) == 5 * 4
    bon = {r.task_id: r.generator_calls for r in rows if r.method == "best-of-n"}
    spiral = {r.task_id: r.generator_calls for r in rows if r.method == "spiral"}
    assert bon == spiral  # compute-matched (one seed: the mean is the value)


def test_an_interrupted_bench_resumes_where_it_stopped(tmp_path, monkeypatch):
    path = tmp_path / "r.sqlite"
    run_bench(["open-loop"], size=6, seeds=1, workers=1, results=path, progress=False)
    table = ResultsTable(path)
    table.db.execute("delete from results where task_id in ('test-0004', 'test-0005')")
    table.db.conn.commit()
    ran = []
    real = runner.run_job
    monkeypatch.setattr(runner, "run_job", lambda job: ran.append(job.task_index) or real(job))
    run_bench(["open-loop"], size=6, seeds=1, workers=1, results=path, progress=False)
    assert sorted(ran) == [4, 5]
    assert len(ResultsTable(path).rows("test", "medium")) == 6


def test_bench_command_writes_tables_plots_and_the_command(tmp_path):
    docs = tmp_path / "docs"
    res = subprocess.run([sys.executable, "-m", "spiral.shell.cli", "bench", "--methods", "open-loop,spiral",
                          "--size", "4", "--seeds", "2", "--workers", "1", "--results", str(tmp_path / "b.sqlite"),
                          "--docs", str(docs)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    text = (docs / "benchmarks.md").read_text()
    assert "spiral bench --methods open-loop,spiral --size 4 --seeds 2" in text
    assert "| spiral |" in text and "± " in text
    assert (docs / "img" / "actwm_test_medium_success_vs_horizon.png").stat().st_size > 1000
    bad = subprocess.run([sys.executable, "-m", "spiral.shell.cli", "bench", "--methods", "magic"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "unknown method" in bad.stderr and "Traceback" not in bad.stderr


def test_dataset_export_loads_with_datasets(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    out = tmp_path / "ds"
    res = subprocess.run([sys.executable, "-m", "spiral.shell.cli", "dataset", "export", "--split", "train",
                          "--size", "5", "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert len(rows) == 5
    for row in rows:
        assert (out / row["file_name"]).exists() and (out / row["video"]).stat().st_size > 0
        assert row["goal"] and row["plan"] and row["split"] == "train"
    import numpy as np
    from datasets import load_dataset

    ds = load_dataset("json", data_files=str(out / "metadata.jsonl"), split="train", cache_dir=str(tmp_path / "c"))
    assert len(ds) == 5 and set(ds.column_names) >= {"action", "goal", "plan", "file_name", "video"}
    frames = np.load(out / rows[0]["frames"])
    assert frames.shape[0] == 16 * rows[0]["horizon"] - (rows[0]["horizon"] - 1)
