"""The episode report as a page: graph/report.py's data through the jinja2 template in shell/templates/."""

from __future__ import annotations

from pathlib import Path

from ..graph.report import EpisodeReport, build_report, finished_state
from ..tools.pages import page_template
from ..tools.paths import writable_file, write_atomic


def render_report(report: EpisodeReport) -> str:
    return page_template("spiral.shell", "report.html.j2").render(r=report)


def write_report(workspace: str | Path, thread_id: str, out: str | Path | None = None) -> Path:
    """Build and render the page; by default next to the episode's video (report.html)."""
    chosen = writable_file(out, "--out") if out else None
    state = finished_state(workspace, thread_id)
    report = build_report(workspace, thread_id, state)
    path = chosen or Path(state.summary).parent / "report.html"
    return write_atomic(path, render_report(report).encode("utf-8"))
