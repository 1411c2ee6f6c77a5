"""The tiny training recipe's cost on this machine: collect through the graph, then GRPO and DPO.

Each command runs as its own process, as a user runs it, so its wall time
includes start-up and its peak resident memory is its own (getrusage of the
children). The optimizer-step time is the trainer's, from its metrics.csv
(`step_s`, the wall time of an epoch's pass over its optimizer steps).
"""

from __future__ import annotations

import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel


class CommandCost(BaseModel):
    command: str
    wall_s: float
    peak_rss_mb: float


class TrainingCost(BaseModel):
    tasks: int
    group: int
    commands: list[CommandCost]
    grpo_step_s: float
    dpo_step_s: float
    grpo_steps: int
    dpo_steps: int
    samples: int


def _run(args: list[str]) -> CommandCost:
    """One `spiral` command in a fresh process: wall time and that process's own peak RSS (wait4)."""
    with tempfile.TemporaryFile() as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "spiral.shell.cli", *args], stdout=log, stderr=log)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            log.seek(0)
            raise RuntimeError(f"spiral {' '.join(args)} failed: {log.read().decode(errors='replace')[-2000:]}")
    return CommandCost(command="spiral " + " ".join(args), wall_s=wall, peak_rss_mb=usage.ru_maxrss / 1024)


def _metrics(path: Path) -> list[dict[str, float]]:
    with path.open() as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def training_cost(size: int = 4, group: int = 4, epochs: int = 2) -> TrainingCost:
    home = Path(tempfile.mkdtemp(prefix="spiral-train-bench-"))
    try:
        ws = home / "ws"
        collect = ["train", "collect", "--backbone", "tiny-wan", "--size", str(size), "--group", str(group),
                   "--frames", "5", "--steps", "4", "--max-calls", str(4 * group), "--workspace", str(ws)]
        costs = [_run(collect)]
        steps = {}
        for method in ("grpo", "dpo"):
            out = home / method
            costs.append(_run(["train", method, "--workspace", str(ws), "--out", str(out), "--recipe", "tiny-cpu",
                               "--epochs", str(epochs), "--reward", "brightness=1"]))
            steps[method] = _metrics(out / "metrics.csv")
        for cost in costs:  # paths in the table would be this run's temporary folder
            cost.command = cost.command.replace(str(home) + "/", "")
        return TrainingCost(tasks=size, group=group, commands=costs,
                            grpo_step_s=statistics.median(r["step_s"] for r in steps["grpo"]),
                            dpo_step_s=statistics.median(r["step_s"] for r in steps["dpo"]),
                            grpo_steps=int(steps["grpo"][-1]["step"]), dpo_steps=int(steps["dpo"][-1]["step"]),
                            samples=int(steps["grpo"][-1]["samples"]))
    finally:
        shutil.rmtree(home, ignore_errors=True)


def training_section(cost: TrainingCost, command: str) -> str:
    lines = ["### The tiny training recipe (CPU)", "```bash", command, "```",
             f"`tiny-wan` (random weights, 128x128x5 frames, 4 denoising steps), {cost.tasks} ActWM-Sim train tasks "
             f"collected through the graph in groups of {cost.group} with trajectories, then `--recipe tiny-cpu` "
             "(LoRA rank 4, reward: last-frame brightness). Each command in its own process; wall time includes "
             "start-up and loading the pipeline.", "",
             "| command | wall s | peak RSS MB |", "| --- | --- | --- |"]
    lines += [f"| `{c.command}` | {c.wall_s:.1f} | {c.peak_rss_mb:.0f} |" for c in cost.commands]
    lines += ["", f"GRPO: {cost.samples} samples, {cost.grpo_steps} optimizer steps, {cost.grpo_step_s * 1000:.0f} ms a "
              f"step (one sample's transitions each); DPO: {cost.dpo_steps} optimizer steps, "
              f"{cost.dpo_step_s * 1000:.0f} ms a step (one pair each)."]
    return "\n".join(lines) + "\n"
