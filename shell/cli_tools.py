"""The `spiral` subcommands beyond running episodes: benchmark, dataset export, traces, time travel
(history, fork), artifact garbage collection and the graph's drawing."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..bench.suites import SUITES, BenchOptions
from ..graph.session import Session
from ..memory.workspace import Workspace
from ..tools.errors import InputError, ResumeError
from .cli_options import add_model_options, model_from_args
from .console import ProgressPrinter, console, print_summary

if TYPE_CHECKING:
    from ..memory.traces import TraceDB



def add_parsers(sub, workspace_option: Callable[[argparse.ArgumentParser], None]) -> None:
    draw = sub.add_parser("graph", help="print the graph as Mermaid (or write it into a README)")
    draw.add_argument("--readme", default="", help="rewrite the drawing between this file's graph markers")
    traces = sub.add_parser("traces", help="browse the trace database")
    tsub = traces.add_subparsers(dest="traces_command", required=True)
    workspace_option(tsub.add_parser("ls", help="episodes"))
    show = tsub.add_parser("show", help="every attempt of one episode")
    show.add_argument("thread_id", help="the episode's thread (spiral traces ls lists them)")
    workspace_option(show)
    texp = tsub.add_parser("export", help="attempts as JSONL or Parquet")
    texp.add_argument("--format", default="jsonl", choices=["jsonl", "parquet"], help="file format")
    texp.add_argument("--out", required=True, help="the file to write")
    texp.add_argument("--thread-id", default="", help="one episode's attempts only (default: every episode's)")
    workspace_option(texp)
    report = sub.add_parser("report", help="write an episode's HTML report (self-contained: opens from disk)")
    report.add_argument("thread_id", help="the episode's thread (spiral traces ls lists them)")
    report.add_argument("--out", default="", help="the HTML file (default: report.html next to the episode's video)")
    workspace_option(report)
    hist = sub.add_parser("history", help="a thread's checkpoints (for fork)")
    hist.add_argument("thread_id", help="the thread whose checkpoints to list")
    workspace_option(hist)
    fork = sub.add_parser("fork", help="replay a thread from a past checkpoint in a new thread")
    fork.add_argument("thread_id", help="the thread to replay from")
    fork.add_argument("--checkpoint", required=True, help="checkpoint id from `spiral history`")
    fork.add_argument("--instruction", "--action", dest="instruction", default=None,
                      help="a different instruction for the sub-action at that checkpoint")
    fork.add_argument("--new-thread-id", default="", help="name of the new thread (default: random)")
    workspace_option(fork)
    gc = sub.add_parser("gc", help="delete artifacts no checkpoint or trace references")
    gc.add_argument("--dry-run", action="store_true", help="say what would be deleted, delete nothing")
    gc.add_argument("--grace-minutes", type=float, default=60.0,
                    help="keep unreferenced artifacts younger than this: a running step writes its artifacts before "
                         "the checkpoint naming them commits (default: 60)")
    workspace_option(gc)
    bench = sub.add_parser("bench", help="run a benchmark and write its section of docs/benchmarks.md",
                           description="Run a benchmark and write its section of docs/benchmarks.md. Suites: " +
                           "; ".join(f"{name}: {what}" for name, what in SUITES.items()))
    add_model_options(bench, BenchOptions)
    dataset = sub.add_parser("dataset", help="ActWM-Dataset tools")
    dsub = dataset.add_subparsers(dest="dataset_command", required=True)
    export = dsub.add_parser("export", help="write start images, actions, plans and ground-truth videos")
    export.add_argument("--split", default="train", help="ActWM-Sim split: train or test")
    export.add_argument("--out", required=True, help="the dataset folder to write")
    export.add_argument("--size", type=int, default=None, help="number of tasks (default: the whole split)")
    export.add_argument("--frames", type=int, default=16, help="frames per ground-truth segment")


def _workspace(args: argparse.Namespace) -> str:
    return str(Workspace.of(args.workspace or None))


def cmd_bench(args: argparse.Namespace) -> None:
    from ..bench.suites import run_suite
    from .report_page import render_report

    command = "spiral " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["bench"] else \
        f"spiral bench --suite {args.suite}"
    options = model_from_args(BenchOptions, args)
    print(run_suite(options, command, progress=sys.stderr.isatty(), render_report=render_report))


def cmd_dataset(args: argparse.Namespace) -> None:
    from ..bench.dataset import export_dataset

    out = export_dataset(args.split, args.out, size=args.size, num_frames=args.frames, progress=sys.stderr.isatty())
    print(f"wrote {out / 'metadata.jsonl'}")


def cmd_traces(args: argparse.Namespace) -> None:

    with Workspace.of(args.workspace or None).reading_traces() as db:
        _show_traces(args, db)


def _show_traces(args: argparse.Namespace, db: TraceDB) -> None:
    from rich.table import Table

    if args.traces_command == "export":
        n = db.export(args.out, args.format, args.thread_id or None)
        print(f"wrote {n} attempts to {args.out}")
        return
    if args.traces_command == "ls":
        table = Table(title="episodes")
        for col in ("thread", "status", "generator calls", "action"):
            table.add_column(col)
        for ep in db.episodes():
            table.add_row(ep.thread_id, ep.status, str(ep.generator_calls), ep.action[:60])
        console().print(table)
        return
    attempts = db.attempts(args.thread_id)
    if not attempts:
        raise ResumeError(f"no attempts recorded for thread {args.thread_id!r}")
    table = Table(title=args.thread_id)
    for col in ("step", "try", "plan", "seed", "judged by", "result", "prompt", "feedback"):
        table.add_column(col)
    for a in attempts:
        result = "–" if a.passed is None else "pass" if a.passed else (a.failure or "fail")
        attempt = f"{a.try_index + 1}" if a.group_size == 1 else f"{a.try_index + 1}.{a.sample + 1}{'*' if a.chosen else ''}"
        table.add_row(str(a.sub_action_index + 1), attempt, str(a.plan_version), str(a.seed),
                      a.critic or "–", result, a.prompt, a.feedback[:80])
    console().print(table)


def cmd_report(args: argparse.Namespace) -> None:
    from .report_page import write_report

    print(f"wrote {write_report(_workspace(args), args.thread_id, args.out or None)}")


def cmd_history(args: argparse.Namespace) -> None:
    with Session(_workspace(args)) as session:
        rows = session.history(args.thread_id)
    print(f"{'checkpoint':38s} {'step':>4s}  {'next':9s} {'sub-action':>10s} {'plan':>4s} {'tries':>5s}  status")
    for r in rows:  # plain lines: checkpoint ids are for copying into `spiral fork`
        sub_action = "-" if r.sub_action is None else str(r.sub_action + 1)  # 1-based, as the run printed it
        print(f"{r.checkpoint_id:38s} {r.step!s:>4s}  {r.next:9s} {sub_action:>10s} "
              f"{r.plan_version!s:>4s} {r.attempts!s:>5s}  {r.status}")


def cmd_fork(args: argparse.Namespace) -> int:
    from .cli_run import EXIT_CODES

    with Session(_workspace(args)) as session:
        new_thread = args.new_thread_id or None
        run = session.fork(args.thread_id, args.checkpoint, new_thread, args.instruction, observer=ProgressPrinter())
        console().print(f"forked {args.thread_id}@{args.checkpoint} into {run.thread_id}")
    print_summary(run)
    return EXIT_CODES.get(run.state.status, 1)


def cmd_gc(args: argparse.Namespace) -> None:
    from ..memory.gc import collect_garbage

    if not 0 <= args.grace_minutes < float("inf"):
        raise InputError(f"--grace-minutes must be a number of minutes of at least 0; got {args.grace_minutes:g}")
    doomed, size = collect_garbage(_workspace(args), dry_run=args.dry_run, grace_s=60 * args.grace_minutes)
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} {len(doomed)} unreferenced artifacts ({size / 1e6:.1f} MB)")


def cmd_graph(args: argparse.Namespace) -> None:
    from .drawing import mermaid, update_readme

    if not args.readme:
        print(mermaid())
        return
    changed = update_readme(args.readme)
    print(f"{args.readme}: {'drawing updated' if changed else 'drawing already current'}")
