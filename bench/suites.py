"""`spiral bench --suite ...`: run a benchmark, print its section, and write it into docs/benchmarks.md."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SUITES: dict[str, str] = {
    "actwm-sim": "ActWM-Sim tasks under every method on the simulated backbone (the main table)",
    "tabletop-tiny": "held-out tasks under open-loop, best-of-n, decompose, reseed and SPIRAL on the learned model",
    "checkpoint-growth": "checkpoint bytes per attempt as episodes grow from 2 to 32 sub-actions",
    "reflective-memory": "generator calls and success with and without lessons from earlier episodes",
    "server": "the same episodes in-process and through a langgraph dev server",
    "overhead": "the loop's own cost against a bare LangGraph floor doing the same durable work",
    "memory": "RSS over many episodes in one process",
    "training": "what a GRPO step costs",
    "startup": "the first answer of common commands",
    "report": "an episode report's size, build time and opening time",
}
"""Every benchmark `spiral bench --suite` runs (the shell's choices come from here)."""


class BenchOptions(BaseModel):
    """`spiral bench`'s options: every suite reads the ones it needs."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    suite: Literal[tuple(SUITES)] = Field("actwm-sim", description="which benchmark")  # type: ignore[valid-type]
    methods: str = Field("", description="comma-separated methods (default: all of the suite's: actwm-sim open-loop,"
                         "best-of-n,spiral,spiral-no-critic,spiral-no-memory,spiral-no-replan; tabletop-tiny open-loop,"
                         "best-of-n,decompose,reseed,spiral)")
    split: Literal["train", "val", "test"] = Field("test", description="ActWM-Sim split the tasks come from")
    size: int | None = Field(None, ge=1, description="number of tasks (default: the whole split, or the suite's)")
    seeds: int = Field(3, ge=1, le=100, description="episode seeds per task and method")
    difficulty: Literal["easy", "medium", "hard"] = Field("medium", description="the sim backbone's error preset")
    workers: int = Field(2, ge=1, le=64, description="parallel worker processes")
    results: str = Field("bench_results.sqlite", description="results table; an interrupted bench resumes from it")
    model: str = Field("", description="tabletop-tiny suite: a pipeline folder instead of the shipped weights (e.g. a "
                       "`spiral train pretrain` run's pipeline/)")
    lora: str = Field("", description="tabletop-tiny suite: an adapter from `spiral train` (after RL)")
    label: str = Field("", description="tabletop-tiny suite: a name for this model's own section and figure in "
                       "benchmarks.md (letters, digits, '-'; default: the shipped weights' section)")
    docs: str = Field("docs", description="where benchmarks.md and img/ are written ('' to skip)")
    server: str = Field("", description="actwm-sim suite: run the closed-loop methods on these LangGraph servers "
                        "(comma-separated URLs sharing one PostgreSQL and artifact store, SPIRAL_DATABASE_URI and "
                        "SPIRAL_ARTIFACTS_URL set here too; --workers episodes in flight per server) and score "
                        "them here")

    def server_list(self) -> list[str]:
        return [u.strip() for u in self.server.split(",") if u.strip()]

    def method_list(self) -> list[str]:
        return [m.strip() for m in self.methods.split(",") if m.strip()]


FIGURE_TASK = 4
"""The held-out task whose keyframes the tabletop-tiny section shows (a `gather`: several objects into a bowl)."""


def run_suite(options: BenchOptions, command: str, progress: bool = False, render_report: Callable | None = None) -> str:
    """The suite's section of docs/benchmarks.md (written there unless `options.docs` is empty). `render_report`:
    the shell's episode-page renderer, which the `report` suite measures."""
    suite, methods, split, size, seeds = (options.suite, options.method_list(), options.split, options.size,
                                          options.seeds)
    difficulty, workers, results, docs = options.difficulty, options.workers, options.results, options.docs
    model, lora, label = options.model, options.lora, options.label
    from .report import write_section  # the shell lists the suites at start-up; their code loads when one runs
    if options.server and suite != "actwm-sim":
        from ..tools.errors import InputError

        raise InputError(f"--server runs the actwm-sim suite's episodes on a fleet; suite {suite} runs here")
    if suite == "actwm-sim":
        from .episodes import METHODS

        return _actwm(command, methods or list(METHODS), split, size, seeds, difficulty, workers, results, docs,
                      progress, options.server_list())
    if suite == "tabletop-tiny":
        from ..tools.errors import InputError
        from .learned import METHODS as LEARNED
        from .learned import run_learned, strips_figure
        from .learned_report import learned_section

        unknown = sorted(set(methods) - set(LEARNED))
        if unknown:
            raise InputError(f"unknown method(s) for tabletop-tiny: {', '.join(unknown)}; choose from {', '.join(LEARNED)}")
        if label and not re.fullmatch(r"[a-z0-9][a-z0-9-]*", label):
            raise InputError(f"--label {label!r}: use lower-case letters, digits and '-' (it names a section and a file)")
        rows = run_learned(Path(results).with_suffix("").as_posix() + "-tabletop-tiny.jsonl", size=size or 20,
                           seeds=seeds, methods=tuple(methods or LEARNED), model=model, lora=lora, progress=progress)
        note = f"LoRA {lora}" if lora else (f"weights {model}" if model else "the shipped weights")
        text = learned_section(rows, command, note, ", ".join(([label] if label else []) + (["after RL"] if lora else [])))
        if docs:
            key = "".join(f":{part}" for part in (label, "rl" if lora else "") if part)
            name = f"tabletop_tiny{key.replace(':', '_').replace('-', '_')}.png"
            strips_figure(FIGURE_TASK, 0, Path(docs) / "img" / name, model=model, lora=lora)
            text += (f"\n![keyframes](img/{name})\n\n*Held-out task {FIGURE_TASK} (fixed in advance, not picked by its "
                     "result), seed 0: eight keyframes of the open-loop segment and of SPIRAL's video"
                     f"{', with the base weights and after RL' if lora else ''}; each row says the judge's verdict.*\n")
            write_section(Path(docs) / "benchmarks.md", f"bench:tabletop-tiny{key}", text)
        return text
    if suite == "reflective-memory":
        from .reflective import reflective_memory, reflective_section

        text = reflective_section(reflective_memory(test_size=size, seeds=seeds, difficulty=difficulty,
                                                    workers=workers, progress=progress), command)
    elif suite == "server":
        from .server import server_overhead, server_section

        text = server_section(server_overhead(size=size or 20, difficulty=difficulty), command)
    elif suite == "memory":
        from .resources import memory_profile, memory_section

        text = memory_section(memory_profile(size=size or 20, difficulty=difficulty), command)
    elif suite == "training":
        from .training import training_cost, training_section

        text = training_section(training_cost(size=size or 4), command)
    elif suite == "report":
        from .report_cost import report_cost, report_cost_section

        if render_report is None:
            raise ValueError("the report suite measures a page renderer: pass render_report")
        text = report_cost_section(report_cost(render_report), command)
    elif suite == "startup":
        from .startup import startup_section, startup_times

        text = startup_section(startup_times(), command)
    elif suite == "checkpoint-growth":
        from .growth import checkpoint_growth, growth_section

        text = growth_section(checkpoint_growth(difficulty=difficulty), command)
    else:
        from .overhead import loop_overhead, overhead_section

        text = overhead_section(loop_overhead(size=size or 20, difficulty=difficulty), command)
    if docs:
        write_section(Path(docs) / "benchmarks.md", f"bench:{suite}", text)
    return text


def _actwm(command: str, methods: list[str], split: str, size: int | None, seeds: int, difficulty: str, workers: int,
           results: str, docs: str, progress: bool, servers: list[str]) -> str:
    from .report import main_table, plots, section, write_section
    from .runner import run_bench, run_key

    table = run_bench(methods, split=split, size=size, seeds=seeds, difficulty=difficulty, workers=workers,
                      results=results, progress=progress, servers=servers)
    minutes = table.run_minutes(run_key(methods, split, size, seeds, difficulty))
    rows = [r for r in table.rows(split, difficulty, methods) if r.seed < seeds]
    if docs:
        from .gallery import bench_page, gallery_rows, write_bench_page
        from .tasks import SPLIT_SIZES

        stem = f"actwm_{split}_{difficulty}"
        images = plots(rows, Path(docs) / "img", stem)
        page = write_bench_page(bench_page(rows, command, images, gallery_rows(split, size or SPLIT_SIZES[split], difficulty),
                                           f"ActWM-Sim, split {split}, difficulty {difficulty}"),
                                Path(docs) / f"bench_{split}_{difficulty}.html")
        write_section(Path(docs) / "benchmarks.md", f"bench:actwm-sim:{split}:{difficulty}",
                      section(rows, command, images, Path(docs), minutes) +
                      f"\nEvery method on the same tasks, side by side: [{page.name}]({page.name}) (open it from disk).\n")
    return main_table(rows)
