"""`spiral demo | run | resume | backbones`: episodes from the command line, through the session driver."""

from __future__ import annotations

import argparse
import uuid
from pathlib import Path

from ..graph.session import EpisodeRun, Session
from ..memory.workspace import Workspace
from ..tools.video import backbone_info, backbone_names
from ..vocabulary.config import RunContext
from ..vocabulary.events import ReviewDecision
from .cli_options import context_from_args
from .console import ProgressPrinter, TerminalReviewer, console, print_summary

EXIT_CODES = {"done": 0, "partial": 3, "budget_exhausted": 4}
"""`spiral run | demo | resume` exit with 0 only when the episode is done; 2 is bad input (cli.py)."""
EXIT_WAITING_FOR_REVIEW = 5


def _finish(run: EpisodeRun) -> int:
    """Print the finished episode and return its exit code (5 while a review waits for an answer)."""
    if not run.finished:
        return EXIT_WAITING_FOR_REVIEW if run.waiting is not None else 0
    print_summary(run)
    if run.state.run_settings().write_video:  # the page embeds the segments: written with the video
        from .report_page import write_report

        try:
            console().print(f"report: {write_report(run.state.run_settings().workspace, run.thread_id)}")
        except Exception as exc:  # the episode is done and saved; a page that cannot be written must not hide it
            from rich.markup import escape

            console().print(f"[yellow]{escape(f'report not written ({type(exc).__name__}: {exc})')}; try: spiral "
                            f"report {run.thread_id}[/yellow]")
    return EXIT_CODES.get(run.state.status, 1)


def _run_episode(image: str, action: str, context: RunContext, thread_id: str) -> int:
    with Session(context.workspace) as session, ProgressPrinter(live=_live(context.review)) as progress:
        run = session.start(action, image, context, thread_id, observer=progress,
                            reviewer=TerminalReviewer(session.workspace, thread_id))
    return _finish(run)


def _live(review: bool) -> bool:
    """A live status line on a terminal, unless a review will read answers from it."""
    import sys

    return sys.stdout.isatty() and not review


def cmd_demo(args: argparse.Namespace) -> int:
    from ..tools.media import save_png
    from ..tools.world.demo import DEMO_ACTION, demo_scene
    from ..tools.world.render import render_scene

    out = Path(args.out_dir or "spiral_demo").resolve()
    context = context_from_args(args, out_dir=str(out))
    context.check_backbone()
    start = save_png(render_scene(demo_scene(), context.height, context.width), out / "start.png")
    console().print(f"demo: '{DEMO_ACTION}' on the SIMULATED backbone ({context.backbone}, {context.difficulty})")
    return _run_episode(str(start), DEMO_ACTION, context, args.thread_id or f"demo-{uuid.uuid4().hex[:8]}")


def cmd_run(args: argparse.Namespace) -> int:
    return _run_episode(args.image, args.action, context_from_args(args), args.thread_id or f"run-{uuid.uuid4().hex[:8]}")


def cmd_resume(args: argparse.Namespace) -> int:
    workspace = str(Workspace.of(args.workspace or None))
    answer = ReviewDecision(decision="approve") if args.approve else \
        ReviewDecision(decision="reject", feedback=args.reject) if args.reject is not None else None
    with Session(workspace) as session:
        state = session.state(args.thread_id)
        if state is not None and state.summary and answer is None:
            console().print(f"thread {args.thread_id} already finished ({state.status})")
            return EXIT_CODES.get(state.status, 1)
        console().print(f"resuming {args.thread_id}")
        run = session.resume(args.thread_id, answer, observer=ProgressPrinter(),
                             reviewer=TerminalReviewer(workspace, args.thread_id))
    return _finish(run)


def cmd_backbones(args: argparse.Namespace) -> None:
    for name in backbone_names():
        info = backbone_info(name)
        print(f"{name:16s} {'GPU' if info.needs_gpu else 'CPU'}  {info.description}")
        if info.rules:
            print(f"{'':21s}{info.rules}")
