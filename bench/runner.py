"""Run methods on ActWM-Sim tasks (bench/episodes.py), in parallel, streaming results to a table that
resumes: an interrupted bench runs only the episodes it has no result for."""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import sqlite_utils

from ..tools.errors import InputError
from .episodes import METHODS, SPIRAL_VARIANTS, EpisodeResult, Job, run_job, suite
from .tasks import SUITE_VERSION, Task, build_suite


class ResultsTable:
    """Episode results in SQLite, one row per (suite, split, difficulty, method, task, seed)."""

    PK = ("suite", "split", "difficulty", "method", "task_id", "seed")

    def __init__(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite_utils.Database(path)

    def done(self) -> set[tuple]:
        if "results" not in self.db.table_names():
            return set()
        return {tuple(r[k] for k in self.PK) for r in self.db["results"].rows}

    def record_run(self, key: str, minutes: float, episodes: int) -> None:
        """Wall time of a bench invocation that ran episodes (a resume that ran none keeps the old)."""
        if episodes:
            self.db["runs"].upsert({"key": key, "minutes": minutes, "episodes": episodes}, pk="key")

    def run_minutes(self, key: str) -> float | None:
        if "runs" not in self.db.table_names():
            return None
        rows = list(self.db["runs"].rows_where("key = ?", [key]))
        return float(rows[0]["minutes"]) if rows else None

    def add(self, result: EpisodeResult) -> None:
        self.db["results"].upsert(result.model_dump(), pk=self.PK, alter=True)

    def rows(self, split: str, difficulty: str, methods: list[str] | None = None) -> list[EpisodeResult]:
        if "results" not in self.db.table_names():
            return []
        rows = [EpisodeResult(**r) for r in self.db["results"].rows_where(
            "suite = ? and split = ? and difficulty = ?", [SUITE_VERSION, split, difficulty])]
        return [r for r in rows if methods is None or r.method in methods]


def _key(job: Job, task: Task) -> tuple:
    return (SUITE_VERSION, job.split, job.difficulty, job.method, task.id, job.seed)


def run_key(methods: list[str], split: str, size: int | None, seeds: int, difficulty: str) -> str:
    return f"{SUITE_VERSION}|{split}|{size}|{seeds}|{difficulty}|{','.join(sorted(methods))}"


def run_bench(methods: list[str], *, split: str = "test", size: int | None = None, seeds: int = 3,
              difficulty: str = "medium", workers: int = 2, results: str | Path = "bench_results.sqlite",
              progress: bool = True, servers: list[str] | None = None) -> ResultsTable:
    """Run every (task, method, seed) not already in the results table; best-of-n last. With `servers`, the
    closed-loop methods run on that LangGraph fleet (bench/served.py). The invocation's wall time is recorded
    when it ran any episode."""
    if servers:
        from .served import check_served

        check_served(methods)
    t0 = time.perf_counter()
    table, ran = _run_bench(methods, split, size, seeds, difficulty, workers, results, progress, servers or [])
    table.record_run(run_key(methods, split, size, seeds, difficulty), (time.perf_counter() - t0) / 60, ran)
    return table


def _run_bench(methods, split, size, seeds, difficulty, workers, results, progress,
               servers: list[str]) -> tuple[ResultsTable, int]:
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise InputError(f"unknown method(s) {', '.join(unknown)}; choose from: {', '.join(METHODS)}")
    if workers < 1:
        raise InputError("--workers must be at least 1")
    tasks = suite(split, size if size is not None else len(build_suite(split)))
    size = len(tasks)
    table = ResultsTable(results)
    first = [m for m in methods if m != "best-of-n"]
    if "best-of-n" in methods and "spiral" not in first:
        first.append("spiral")  # best-of-n is matched to SPIRAL's calls on each task
    ran = _run_jobs([Job(split=split, size=size, task_index=i, method=m, seed=s, difficulty=difficulty)
                     for m in first for i in range(size) for s in range(seeds)], tasks, table, workers, progress,
                    servers)
    if "best-of-n" in methods:
        spiral_calls: dict[str, list[int]] = {}
        for r in table.rows(split, difficulty, ["spiral"]):
            spiral_calls.setdefault(r.task_id, []).append(r.generator_calls)
        jobs = [Job(split=split, size=size, task_index=i, method="best-of-n", seed=s, difficulty=difficulty,
                    n_calls=int(round(np.mean(spiral_calls[t.id]))))
                for i, t in enumerate(tasks) for s in range(seeds)]
        ran += _run_jobs(jobs, tasks, table, workers, progress, servers)
    return table, ran


def _run_jobs(jobs: list[Job], tasks, table: ResultsTable, workers: int, progress: bool,
              servers: list[str] | None = None) -> int:
    done = table.done()
    todo = [j for j in jobs if _key(j, tasks[j.task_index]) not in done]
    if not todo:
        return 0
    from tqdm import tqdm

    served = [j for j in todo if servers and j.method in SPIRAL_VARIANTS]
    local = [j for j in todo if j not in served]
    bar = tqdm(total=len(todo), desc="episodes", disable=not progress, unit="ep")
    if served:
        from .served import served_results

        def counted(done, label, total):  # the fleet's episodes tick the same bar as they finish
            for item in done:
                bar.update(1)
                yield item

        for result in served_results(served, tasks, servers or [], workers, counted):
            table.add(result)
    for result in results_of(local, workers):
        table.add(result)
        bar.update(1)
    bar.close()
    return len(todo)


def results_of(jobs: list[Job], workers: int) -> Iterator[EpisodeResult]:
    """Each job's result, as the workers finish them (in order with one worker)."""
    if workers == 1:
        yield from map(run_job, jobs)
        return
    with mp.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap_unordered(run_job, jobs, chunksize=1)

