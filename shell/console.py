"""What `spiral` shows in a terminal: progress lines as an episode runs, the review prompt, the summary."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..graph.session import EpisodeRun
from ..memory.workspace import Workspace
from ..tools.media import write_gif
from ..vocabulary.events import (
    AttemptJudged,
    AttemptReviewed,
    EpisodeFinished,
    EpisodeStarted,
    GeneratorProgress,
    InstructionRefined,
    PlanMade,
    ReviewDecision,
    ReviewRequest,
    SegmentReady,
    SessionEvent,
)


def console() -> Console:
    return Console(highlight=False, soft_wrap=True)


class ProgressPrinter:
    """One line per plan, critique, refinement, review and finish (a session observer); on a terminal also
    a live status line: sub-action k of n, the try, the denoising step, the last verdict.

    Use it as a context manager so the status line is cleared however the run ends."""

    def __init__(self, live: bool | None = None) -> None:
        self.out = console()
        self.live = sys.stdout.isatty() if live is None else live
        self.plan_size, self.sub_action, self.try_number = 0, 0, 0
        self.phase, self.verdict = "planning", ""
        self._status = None

    def __enter__(self) -> ProgressPrinter:
        if self.live:
            self._status = self.out.status(self.status_text(), spinner="dots")
            self._status.start()
        return self

    def __exit__(self, *exc) -> None:
        self.pause()

    def pause(self) -> None:
        """Stop the status line (before a prompt reads the terminal, and at the end)."""
        if self._status is not None:
            self._status.stop()
            self._status = None

    def status_text(self) -> str:
        parts = [f"sub-action {self.sub_action} of {self.plan_size}" if self.plan_size else "planning"]
        if self.try_number:
            parts.append(f"try {self.try_number}")
        if self.phase != "planning":
            parts.append(self.phase)
        if self.verdict:
            parts.append(f"last: {self.verdict}")
        return escape(" · ".join(parts))

    def _track(self, event: SessionEvent) -> None:
        """What the status line shows, from the event stream."""
        if isinstance(event, PlanMade):
            self.plan_size, self.sub_action = len(event.plan.sub_actions), event.cursor + 1
            self.try_number, self.phase = 0, "generating"
        elif isinstance(event, GeneratorProgress):
            self.sub_action, self.try_number = event.sub_action + 1, event.try_index + 1
            self.phase = f"denoising {event.step}/{event.steps}" if event.steps > 1 else "generating"
        elif isinstance(event, SegmentReady):
            self.phase = "judging"
        elif isinstance(event, AttemptJudged) and event.attempt.critique is not None:
            c = event.attempt.critique
            self.verdict = "pass" if c.passed else f"fail ({c.failure})" if c.failure else "fail"
        if self._status is not None:
            self._status.update(self.status_text())

    def __call__(self, event: SessionEvent) -> None:
        self._track(event)
        out = self.out
        if isinstance(event, EpisodeStarted):
            out.print(f"thread {event.thread_id}  (resume with: spiral resume {event.thread_id} "
                      f"--workspace {event.workspace})")
        elif isinstance(event, PlanMade):
            replanned = event.plan.version > 0
            n = len(event.plan.sub_actions)
            label = "replanned the rest" if replanned else f"plan ({n} sub-action{'' if n == 1 else 's'})"
            if replanned and all(s.index < event.cursor for s in event.plan.sub_actions):
                label += ": nothing left to do"
            out.print(f"[bold]{label}[/bold]")
            for s in event.plan.sub_actions:
                if not replanned or s.index >= event.cursor:
                    out.print(f"  {s.index + 1}. {s.description}  → {', '.join(s.postconditions)}")
        elif isinstance(event, AttemptJudged):
            a, c = event.attempt, event.attempt.critique
            assert c is not None
            mark = "[green]pass[/green]" if c.passed else "[red]fail[/red]" + (f" ({c.failure})" if c.failure else "")
            out.print(f"  step {a.sub_action_index + 1} try {a.try_index + 1}: {mark}  {c.feedback}")
        elif isinstance(event, InstructionRefined):
            out.print(f"    refine → {event.instruction}")
        elif isinstance(event, AttemptReviewed):
            a = event.attempt
            rejected = a.review == "rejected" and a.critique is not None
            out.print(f"    review: {a.review}" + (f" ({a.critique.feedback})" if rejected else ""))
        elif isinstance(event, EpisodeFinished):
            out.print(f"[bold]{event.status}[/bold]: {event.video}")


class TerminalReviewer:
    """Shows the segment waiting for review and reads an answer from the terminal; without a terminal
    (or on Ctrl-D) it leaves the run paused, to be answered with `spiral resume`."""

    def __init__(self, workspace: str, thread_id: str) -> None:
        self.workspace, self.thread_id, self.out = workspace, thread_id, console()

    def __call__(self, asked: ReviewRequest) -> ReviewDecision | None:
        out = self.out
        frames = Workspace.of(self.workspace).artifacts.get_frames(asked.segment)
        preview = write_gif(frames, Path(self.workspace) / "review" / f"{self.thread_id}.gif")
        if asked.error:
            out.print(f"[red]{asked.error}[/red]")
        verdict = "passed" if asked.critic_passed else "did not pass"
        out.print(f"[bold]review[/bold] step {asked.sub_action + 1} ({asked.description}), try {asked.try_index + 1}: "
                  f"the critic says it {verdict}: {asked.critic_feedback}")
        out.print(f"  preview: {preview}")
        if not sys.stdin.isatty():
            out.print(f"paused for review; answer with: spiral resume {self.thread_id} --workspace {self.workspace} "
                      "--approve   (or --reject 'what is wrong')")
            return None
        try:
            reply = input("  approve? [Y]es / or type what is wrong to reject: ").strip()
        except EOFError:  # Ctrl-D: leave it paused, as without a terminal
            out.print(f"\nleft paused; answer later with: spiral resume {self.thread_id} --workspace {self.workspace}")
            return None
        if reply.lower() in ("", "y", "yes"):
            return ReviewDecision(decision="approve")
        return ReviewDecision(decision="reject", feedback=reply)


def print_summary(run: EpisodeRun) -> None:
    """The finished episode as a table, with where its summary is."""
    summary = json.loads(Path(run.state.summary).read_text())
    table = Table(title=escape(f"{summary['action']}  [{summary['status']}]"))
    for col in ("#", "sub-action", "tries", "result", "score"):
        table.add_column(col)
    for o, step in zip(summary["outcomes"], summary["plan"], strict=False):
        table.add_row(str(o["index"] + 1), step["description"], str(o["tries"]),
                      "pass" if o["passed"] else "best-effort", f"{o['score']:.2f}")
    out = console()
    out.print(table)
    if summary.get("reason"):
        out.print(f"not done: {summary['reason']}")
    out.print(f"generator calls: {summary['generator_calls']}, replans: {summary['replans']}, "
              f"frames: {summary['video_frames']}; summary: {run.state.summary}")
