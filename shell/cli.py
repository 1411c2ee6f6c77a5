"""The `spiral` command: parse, dispatch, and turn SPIRAL's errors into one line.

Errors raised on purpose (`SpiralError`) print as one line and exit non-zero
(2 for bad input); an interrupted run says how to resume it (130). An episode
exits 0 only when it is done: 3 partial, 4 budget spent, 5 waiting for a
review (cli_run.EXIT_CODES).
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys
from collections.abc import Callable

from ..tools.errors import SpiralError, storage_error
from ..vocabulary.config import default_workspace
from . import cli_run, cli_scene, cli_serve, cli_tools, cli_train
from .cli_options import DEMO_OPTIONS, add_context_options, finish_help

COMMANDS: dict[str, Callable[[argparse.Namespace], int | None]] = {
    "demo": cli_run.cmd_demo, "run": cli_run.cmd_run, "resume": cli_run.cmd_resume,
    "backbones": cli_run.cmd_backbones, "bench": cli_tools.cmd_bench, "dataset": cli_tools.cmd_dataset,
    "traces": cli_tools.cmd_traces, "history": cli_tools.cmd_history, "graph": cli_tools.cmd_graph,
    "fork": cli_tools.cmd_fork, "gc": cli_tools.cmd_gc, "train": cli_train.cmd_train,
    "scene": cli_scene.cmd_scene, "report": cli_tools.cmd_report, "serve-generator": cli_serve.cmd_serve_generator}


def _workspace_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workspace", default="", help="artifacts, checkpoints and traces (default: $SPIRAL_HOME or ./.spiral)")


class OneLineParser(argparse.ArgumentParser):
    """A usage error is one line (`spiral: error: ...`, then where the help is), exit 2; its subcommands too."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog.split()[0]}: error: {message} (see: {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    top = OneLineParser(prog="spiral", description="SPIRAL: closed-loop action-conditioned video generation")
    top.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = top.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the built-in scene and action on the simulated backbone",
                          description="Run the built-in scene and action on the simulated backbone; writes "
                                      "spiral_demo/ (video.mp4, video.gif, summary.json). For other scenes, "
                                      "backbones and agents: spiral scene, then spiral run.")
    add_context_options(demo, only=DEMO_OPTIONS)
    demo.add_argument("--thread-id", default="", help="name of the episode thread (default: random)")
    cli_scene.add_parser(sub)
    run = sub.add_parser("run", help="run an episode from a start image and an action")
    run.add_argument("--image", required=True, help="start image: a PNG/JPEG path, an http(s) URL or a data URL")
    run.add_argument("--action", required=True, help="high-level action, e.g. 'put all red objects in the bowl'")
    add_context_options(run)
    run.add_argument("--thread-id", default="", help="name of the episode thread (default: random)")
    resume = sub.add_parser("resume", help="finish an interrupted episode, or answer its review")
    resume.add_argument("thread_id", help="the thread to resume (printed when the run started)")
    _workspace_option(resume)
    answer = resume.add_mutually_exclusive_group()
    answer.add_argument("--approve", action="store_true", help="answer a pending review: accept the segment")
    answer.add_argument("--reject", metavar="FEEDBACK", default=None,
                        help="answer a pending review: reject the segment, saying what is wrong")
    sub.add_parser("backbones", help="list the registered video generators")
    cli_tools.add_parsers(sub, _workspace_option)
    cli_train.add_parsers(sub)
    cli_serve.add_parser(sub)
    return finish_help(top)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        try:
            code = COMMANDS[args.command](args)
        except (OSError, sqlite3.Error) as exc:  # a full disk, a read-only folder: one line, not a traceback
            error = storage_error(exc, getattr(args, "workspace", "") or default_workspace())
            if error is None:
                raise
            raise error from exc
    except SpiralError as exc:
        print(f"spiral: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("spiral: interrupted; resume with `spiral resume THREAD_ID`", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `spiral traces ls | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 0
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
