"""The bench's own page: its tables and plots, and a gallery of the same tasks under each method.

`spiral bench --suite actwm-sim` writes it next to docs/benchmarks.md
(`bench_<split>_<difficulty>.html`, self-contained like the episode report).
The gallery runs a few fixed tasks again at seed 0 under open-loop, best-of-n
(with SPIRAL's call count on that task, compute-matched as in the bench) and
SPIRAL, and shows each final video's keyframes with the ground-truth verdict.
"""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from ..tools.pages import keyframe_strip, page_template, png_uri
from .episodes import EpisodeResult, Job, open_loop_episode, spiral_episode, suite
from .report import COLUMNS, mean_std, methods_in

GALLERY_TASKS = (0, 2, 3, 4, 6)
"""Fixed in advance, one per kind of task (pick-and-place, swap, stacking, gather, compound), not picked by result."""
GALLERY_METHODS = ("open-loop", "best-of-n", "spiral")
STRIP_FRAMES = 6


class GalleryCell(BaseModel):
    method: str
    success: bool
    completion: float
    generator_calls: int
    keyframes: str


class GalleryRow(BaseModel):
    task_id: str
    category: str
    action: str
    cells: list[GalleryCell]


class BenchPage(BaseModel):
    title: str
    command: str
    columns: list[str]
    table: list[list[str]]
    plots: list[str]
    gallery: list[GalleryRow]


def gallery_rows(split: str, size: int, difficulty: str, tasks: tuple[int, ...] = GALLERY_TASKS) -> list[GalleryRow]:
    """Each task at seed 0 under each gallery method, with the ground truth's verdict on its final video."""
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for index in [t for t in tasks if t < size]:
            task = suite(split, size)[index]
            job = Job(split=split, size=size, task_index=index, method="spiral", seed=0, difficulty=difficulty)
            spiral_scores, spiral_video = spiral_episode(task, job, Path(scratch))
            cells = {"spiral": _cell("spiral", spiral_scores, spiral_video)}
            for method in ("open-loop", "best-of-n"):
                scores, video = open_loop_episode(task, job.model_copy(update={
                    "method": method, "n_calls": spiral_scores["generator_calls"]}))
                cells[method] = _cell(method, scores, video)
            rows.append(GalleryRow(task_id=task.id, category=task.category, action=task.action,
                                   cells=[cells[m] for m in GALLERY_METHODS]))
    return rows


def _cell(method: str, scores: dict, video: np.ndarray) -> GalleryCell:
    return GalleryCell(method=method, success=bool(scores["success"]), completion=float(scores["completion"]),
                       generator_calls=int(scores["generator_calls"]),
                       keyframes=png_uri(keyframe_strip(video, STRIP_FRAMES)))


def bench_page(rows: list[EpisodeResult], command: str, images: list[Path], gallery: list[GalleryRow],
               title: str) -> BenchPage:
    table = [[m, *(mean_std([r for r in rows if r.method == m], f, s) for f, _, s in COLUMNS)]
             for m in methods_in(rows)]
    plots = [f"data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}" for path in images]
    return BenchPage(title=title, command=command, columns=["method", *(label for _, label, _ in COLUMNS)],
                     table=table, plots=plots, gallery=gallery)


def write_bench_page(page: BenchPage, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page_template("spiral.bench", "bench_page.html.j2").render(p=page), encoding="utf-8")
    return path
