"""How long the first answer takes: `spiral --help`, a grammar error, the demo's first line.

Each is a fresh process, timed from start to exit (or to its first line of
output, for the demo), the median of `repeats`; and what a simulated run
imports, since the sim path must not load torch, diffusers or transformers.
"""

from __future__ import annotations

import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel

HEAVY = ("torch", "diffusers", "transformers")


class StartupFigure(BaseModel):
    what: str
    command: str
    median_s: float
    runs_s: list[float]


class StartupResult(BaseModel):
    figures: list[StartupFigure]
    heavy_on_sim_path: list[str]
    """Heavy packages a whole simulated run imported (should be none)."""


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "spiral.shell.cli", *args]


def _time_to_exit(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, capture_output=True, timeout=300)
    return time.perf_counter() - start


def _time_to_first_line(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    with subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        assert proc.stdout is not None
        proc.stdout.readline()
        elapsed = time.perf_counter() - start
        proc.kill()
    return elapsed


def _heavy_imports(cwd: Path) -> list[str]:
    """Heavy packages in sys.modules after a whole simulated episode, run in a fresh interpreter."""
    code = ("import sys; from spiral.shell.cli import main; "
            "main(['run', '--image', 'start.png', '--action', 'put the red ball in the bowl', '--workspace', 'ws']); "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300)
    last = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    return [m for m in last.split(",") if m in HEAVY]


def startup_times(repeats: int = 5) -> StartupResult:
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        subprocess.run(_cli("scene", "--objects", "red ball, blue cube, bowl"), cwd=cwd, check=True,
                       capture_output=True)
        cases = [("`spiral --help`", ["--help"], _time_to_exit),
                 ("a grammar error", ["run", "--image", "start.png", "--action", "juggle the red ball", "--workspace",
                                      "ws"], _time_to_exit),
                 ("the demo's first line", ["demo", "--workspace", "ws", "--out", "demo"], _time_to_first_line)]
        figures = []
        for what, args, timer in cases:
            runs = [timer(_cli(*args), cwd) for _ in range(repeats)]
            figures.append(StartupFigure(what=what, command=shlex.join(["spiral", *args]),
                                         runs_s=[round(r, 2) for r in runs], median_s=round(statistics.median(runs), 2)))
        return StartupResult(figures=figures, heavy_on_sim_path=_heavy_imports(cwd))


def startup_section(result: StartupResult, command: str) -> str:
    rows = "\n".join(f"| {f.what} | `{f.command}` | {f.median_s:.2f} | {', '.join(f'{r:.2f}' for r in f.runs_s)} |"
                     for f in result.figures)
    heavy = ", ".join(result.heavy_on_sim_path) or "none of " + ", ".join(HEAVY)
    return ("### Startup: the first answer\n\n"
            f"```bash\n{command}\n```\n\nEach a fresh process (`python -m spiral.shell.cli`), median of "
            f"{len(result.figures[0].runs_s)} runs, from start to exit (the demo: to its first line of output).\n\n"
            "| what | command | median (s) | runs (s) |\n| --- | --- | --- | --- |\n" + rows +
            f"\n\nHeavy packages a whole simulated episode imports: {heavy}.\n")
