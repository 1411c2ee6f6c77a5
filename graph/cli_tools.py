"""The `spiral` subcommands beyond running episodes: benchmark, dataset export, traces,
time travel (history, fork) and artifact garbage collection."""

from __future__ import annotations

import argparse
import contextlib
import sys
import uuid
from pathlib import Path

from ..tools.errors import ResumeError
from .cli import _console, _memory_of, _memory_store, _print_summary, _stream
from .config import RunContext, default_workspace


def cmd_bench(args: argparse.Namespace) -> None:
    import shlex

    from ..bench.report import plots, section, write_section
    from ..bench.runner import run_bench, run_key

    command = "spiral " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["bench"] else \
        f"spiral bench --methods {args.methods} --seeds {args.seeds}"
    if args.suite == "reflective-memory":
        from ..bench.reflective import reflective_memory, reflective_section

        result = reflective_memory(test_size=args.size, seeds=args.seeds, difficulty=args.difficulty,
                                   workers=args.workers, progress=sys.stderr.isatty())
        text = reflective_section(result, command)
        print(text)
        if args.docs:
            write_section(Path(args.docs) / "benchmarks.md", "bench:reflective-memory", text)
        return
    if args.suite == "server":
        from ..bench.server import server_overhead, server_section

        text = server_section(server_overhead(size=args.size or 20, difficulty=args.difficulty), command)
        print(text)
        if args.docs:
            write_section(Path(args.docs) / "benchmarks.md", "bench:server", text)
        return
    if args.suite == "checkpoint-growth":
        from ..bench.growth import checkpoint_growth, growth_section

        rows = checkpoint_growth(difficulty=args.difficulty)
        print(growth_section(rows, command))
        if args.docs:
            write_section(Path(args.docs) / "benchmarks.md", "bench:checkpoint-growth", growth_section(rows, command))
        return
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    table = run_bench(methods, split=args.split, size=args.size, seeds=args.seeds, difficulty=args.difficulty,
                      workers=args.workers, results=args.results, progress=sys.stderr.isatty())
    minutes = table.run_minutes(run_key(methods, args.split, args.size, args.seeds, args.difficulty))
    rows = [r for r in table.rows(args.split, args.difficulty, methods) if r.seed < args.seeds]
    from ..bench.report import main_table

    print(main_table(rows))
    if args.docs:
        docs = Path(args.docs)
        stem = f"actwm_{args.split}_{args.difficulty}"
        images = plots(rows, docs / "img", stem)
        write_section(docs / "benchmarks.md", f"bench:actwm-sim:{args.split}:{args.difficulty}",
                      section(rows, command, images, docs, minutes))
        print(f"wrote {docs / 'benchmarks.md'} and {len(images)} plots")


def cmd_dataset(args: argparse.Namespace) -> None:
    from ..bench.dataset import export_dataset

    out = export_dataset(args.split, args.out, size=args.size, num_frames=args.frames, progress=sys.stderr.isatty())
    print(f"wrote {out / 'metadata.jsonl'}")


def _workspace(args: argparse.Namespace) -> str:
    return str(Path(args.workspace or default_workspace()).resolve())


def cmd_traces(args: argparse.Namespace) -> None:
    from rich.table import Table

    from ..memory.traces import TraceDB

    db = TraceDB(Path(_workspace(args)) / "traces.sqlite")
    if args.traces_command == "export":
        n = db.export(args.out, args.format, args.thread_id or None)
        print(f"wrote {n} attempts to {args.out}")
        return
    if args.traces_command == "ls":
        table = Table(title="episodes")
        for col in ("thread", "status", "generator calls", "action"):
            table.add_column(col)
        for row in db.threads():
            table.add_row(row["thread_id"], str(row.get("status", "")), str(row.get("generator_calls", "")),
                          str(row.get("action", ""))[:60])
        _console().print(table)
        return
    rows = db.attempts(args.thread_id)
    if not rows:
        raise ResumeError(f"no attempts recorded for thread {args.thread_id!r}")
    table = Table(title=args.thread_id)
    for col in ("step", "try", "plan", "seed", "result", "prompt", "feedback"):
        table.add_column(col)
    for r in rows:
        result = "pass" if r.get("passed") else (r.get("failure") or "–")
        table.add_row(str(r["sub_action_index"] + 1), str(r["try_index"] + 1), str(r["plan_version"]), str(r["seed"]),
                      result, r["prompt"], str(r.get("feedback", ""))[:80])
    _console().print(table)


def _with_graph(workspace: str):
    from ..memory.checkpoints import has_checkpoints, open_checkpointer
    from .workflow import checkpoint_serde

    if not has_checkpoints(workspace):
        raise ResumeError(f"no checkpoints in {workspace}; pass the --workspace the run used")
    return open_checkpointer(workspace, checkpoint_serde())


def cmd_history(args: argparse.Namespace) -> None:
    from .timetravel import history
    from .workflow import build_graph

    with _with_graph(_workspace(args)) as saver:
        rows = history(build_graph(checkpointer=saver), args.thread_id)
    print(f"{'checkpoint':38s} {'step':>4s}  {'next':9s} {'sub-action':>10s} {'plan':>4s} {'tries':>5s}  status")
    for r in rows:  # plain lines: checkpoint ids are for copying into `spiral fork`
        print(f"{r['checkpoint_id']:38s} {r['step']!s:>4s}  {r['next']:9s} {r['sub_action']!s:>10s} "
              f"{r['plan_version']!s:>4s} {r['attempts']!s:>5s}  {r['status']}")


def cmd_fork(args: argparse.Namespace) -> None:
    from .timetravel import fork
    from .workflow import build_graph

    workspace = _workspace(args)
    new_thread = args.new_thread_id or f"{args.thread_id}-fork-{uuid.uuid4().hex[:6]}"
    with contextlib.ExitStack() as stack:
        saver = stack.enter_context(_with_graph(workspace))
        source = {"configurable": {"thread_id": args.thread_id}}
        store = stack.enter_context(_memory_store(_memory_of(build_graph(checkpointer=saver), source), workspace))
        graph = build_graph(checkpointer=saver, store=store)
        config = fork(graph, args.thread_id, args.checkpoint, new_thread, args.instruction)
        saved = config["metadata"].get("spiral_settings")
        context = RunContext.model_validate_json(saved) if saved else None
        _console().print(f"forked {args.thread_id}@{args.checkpoint} into {new_thread}")
        _stream(graph, None, config, context, workspace)
        final = graph.get_state({"configurable": {"thread_id": new_thread}}).values
    _print_summary(final["summary"])


def cmd_gc(args: argparse.Namespace) -> None:
    from ..memory.gc import collect_garbage

    doomed, size = collect_garbage(_workspace(args), dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} {len(doomed)} unreferenced artifacts ({size / 1e6:.1f} MB)")


def cmd_graph(args: argparse.Namespace) -> None:
    from .drawing import mermaid, update_readme

    if not args.readme:
        print(mermaid())
        return
    changed = update_readme(args.readme)
    print(f"{args.readme}: {'drawing updated' if changed else 'drawing already current'}")
