"""Does reflective memory pay? Learn lessons on the train split, then run the test split cold and warm.

Cold: an empty store. Warm: the store filled by running SPIRAL with reflective
memory over the `train` split. Neither test run writes lessons, so episodes are
independent and can run in parallel; the only difference is what the store
holds when each test episode plans.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from .episodes import Job, suite
from .runner import results_of


def reflective_memory(*, train_size: int | None = None, test_size: int | None = None, seeds: int = 1,
                      difficulty: str = "medium", workers: int = 2, progress: bool = False) -> dict:
    from tqdm import tqdm

    home = Path(tempfile.mkdtemp(prefix="spiral-reflective-"))
    warm_dir = home / "warm"
    train = suite("train", train_size or 240)
    t0 = time.perf_counter()
    learn = [Job(split="train", size=len(train), task_index=i, method="spiral-reflective-learn", seed=0,
                 difficulty=difficulty, store_dir=str(warm_dir)) for i in range(len(train))]
    for _ in tqdm(results_of(learn, 1), total=len(learn), desc="learn (train)", disable=not progress):
        pass  # one writer at a time into the store
    learn_minutes = (time.perf_counter() - t0) / 60
    from ..memory.store import LESSONS, sqlite_store

    with sqlite_store(warm_dir) as store:
        lessons = len(store.search(LESSONS, limit=10_000))
    test = suite("test", test_size or 120)
    out: dict = {"lessons": lessons, "learn_minutes": learn_minutes, "train_tasks": len(train),
                 "test_tasks": len(test), "seeds": seeds}
    for label, store_dir in (("cold", home / "cold"), ("warm", warm_dir)):
        with sqlite_store(store_dir):
            pass  # create and migrate it here, not in several workers at once
        jobs = [Job(split="test", size=len(test), task_index=i, method="spiral-reflective", seed=s,
                    difficulty=difficulty, store_dir=str(store_dir)) for i in range(len(test)) for s in range(seeds)]
        rows = list(tqdm(results_of(jobs, workers), total=len(jobs), desc=f"test ({label})", disable=not progress))
        out[label] = {"calls": float(np.mean([r.generator_calls for r in rows])),
                      "calls_std_over_seeds": float(np.std([np.mean([r.generator_calls for r in rows if r.seed == s])
                                                            for s in range(seeds)])),
                      "success": float(np.mean([r.success for r in rows])) * 100}
    return out


def reflective_section(result: dict, command: str) -> str:
    cold, warm = result["cold"], result["warm"]
    return "\n".join([
        "### Reflective memory: cold vs warm", "", "```bash", command, "```", "",
        f"Lessons learned on the `train` split ({result['train_tasks']} tasks, SPIRAL with reflective memory, "
        f"{result['learn_minutes']:.1f} min): {result['lessons']}. Then the `test` split "
        f"({result['test_tasks']} tasks × {result['seeds']} seeds), reading the store but not writing it.", "",
        "| store | mean generator calls / episode (± std over seeds) | success |",
        "| --- | --- | --- |",
        f"| cold (empty) | {cold['calls']:.2f} ± {cold['calls_std_over_seeds']:.2f} | {cold['success']:.1f} % |",
        f"| warm (train lessons) | {warm['calls']:.2f} ± {warm['calls_std_over_seeds']:.2f} | {warm['success']:.1f} % |",
        ""])
