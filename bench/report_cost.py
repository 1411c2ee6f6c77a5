"""What an episode report costs: a 30-sub-action sim episode's page, its size, build time and opening time.

Opening is measured in headless Chromium (when installed) from navigation to
every <video> having its first frame decoded, median of `opens` fresh pages.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from ..graph.report import EpisodeReport, build_report
from ..graph.session import Session
from ..tools.media import save_png
from ..tools.world.compose import scene_from_words
from ..tools.world.render import render_scene
from ..vocabulary.config import RunContext

OBJECTS = ("red ball", "blue cube", "green cube", "yellow ball", "purple cube", "orange ball")
PLACES = ("left edge", "right edge", "front edge", "back edge", "center")
SIZE_BUDGET_MB = 8.0
"""The documented ceiling for a 30-sub-action report."""


class ReportCost(BaseModel):
    planned: int
    """Sub-actions of the first plan."""
    sub_actions: int
    """Sub-actions the timeline shows (a replan may drop steps that already hold)."""
    attempts: int
    size_mb: float
    build_s: float
    render_s: float
    open_s: list[float]
    """Each fresh page's time to all videos decodable (empty without Chromium)."""


def long_action() -> str:
    """30 sub-actions: each of six objects to each of five places."""
    return ", then ".join(f"move the {obj} to the {place}" for obj in OBJECTS for place in PLACES)


Renderer = Callable[[EpisodeReport], str]


def report_cost(render: Renderer, opens: int = 3) -> ReportCost:
    """`render` is the shell's page renderer (shell/report_page.py): the bench measures it, it does not own it."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        image = save_png(render_scene(scene_from_words(", ".join(OBJECTS), seed=0)), root / "start.png")
        context = RunContext(workspace=str(root / "ws"), difficulty="easy", max_generator_calls=120)
        with Session(context.workspace) as session:
            run = session.start(long_action(), str(image), context, "long")
        assert run.finished, "the 30-sub-action episode did not finish"
        start = time.perf_counter()
        report = build_report(context.workspace, "long")
        built = time.perf_counter()
        page = root / "report.html"
        page.write_text(render(report), encoding="utf-8")
        rendered = time.perf_counter()
        return ReportCost(planned=len(report.plans[0].steps), sub_actions=len({s.number for s in report.sub_actions}),
                          attempts=sum(len(s.attempts) for s in report.sub_actions),
                          size_mb=round(page.stat().st_size / 1e6, 2), build_s=round(built - start, 2),
                          render_s=round(rendered - built, 3), open_s=_open_times(page, opens))


def _open_times(page: Path, opens: int) -> list[float]:
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser_path is None:
        return []
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        for _ in range(opens):
            tab = browser.new_page(viewport={"width": 1200, "height": 900})
            start = time.perf_counter()
            tab.goto(page.as_uri())
            tab.wait_for_function("[...document.querySelectorAll('video')].every(v => v.readyState >= 2)",
                                  timeout=60000)
            times.append(round(time.perf_counter() - start, 2))
            tab.close()
        browser.close()
    return times


def report_cost_section(cost: ReportCost, command: str) -> str:
    opened = (f"{statistics.median(cost.open_s):.2f} s (median of {len(cost.open_s)} fresh pages: "
              f"{', '.join(f'{t:.2f}' for t in cost.open_s)})" if cost.open_s else "not measured (no Chromium)")
    verdict = "within" if cost.size_mb <= SIZE_BUDGET_MB else "OVER"
    return ("### The episode report of a 30-sub-action episode\n\n"
            f"```bash\n{command}\n```\n\n"
            f"A sim episode (easy) moving six objects to five places each: {cost.planned} sub-actions planned, "
            f"{cost.sub_actions} in the timeline after replanning, {cost.attempts} attempts, every segment "
            "embedded as WebM.\n\n"
            "| what | measured |\n| --- | --- |\n"
            f"| file size | {cost.size_mb:.2f} MB ({verdict} the documented {SIZE_BUDGET_MB:g} MB) |\n"
            f"| building it (trace DB, artifacts, WebM encoding) | {cost.build_s:.2f} s |\n"
            f"| rendering the template | {cost.render_s:.3f} s |\n"
            f"| opening it in headless Chromium, to every video decodable | {opened} |\n")
