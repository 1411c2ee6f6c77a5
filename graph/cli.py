"""The `spiral` command: demo, run, resume, backbones.

Errors raised on purpose (`SpiralError`) print as one line and exit non-zero;
progress goes to the terminal as the graph streams its node updates.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import uuid
from pathlib import Path
from typing import Any

from ..tools.errors import InputError, ResumeError, SpiralError
from .config import RunContext, default_workspace

log = logging.getLogger("spiral")


def _console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backbone", default="sim", help="video generator (see `spiral backbones`)")
    p.add_argument("--difficulty", default="medium", help="sim error-model preset: easy, medium, hard")
    p.add_argument("--seed", type=int, default=0, help="episode seed")
    p.add_argument("--frames", type=int, default=16, help="frames per segment")
    p.add_argument("--height", type=int, default=128)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--max-tries", type=int, default=3, help="tries per sub-action (inner loop)")
    p.add_argument("--max-replans", type=int, default=2, help="replans per episode (outer loop)")
    p.add_argument("--max-calls", type=int, default=40, help="generator calls per episode")
    p.add_argument("--model", default="", help="diffusers backbones: pipeline folder or hub id")
    p.add_argument("--dtype", default="auto", help="diffusers backbones: auto, float32, bfloat16, float16")
    p.add_argument("--device", default="auto", help="diffusers backbones: auto, cpu, cuda, cuda:N")
    p.add_argument("--cpu-offload", action="store_true", help="diffusers backbones: model CPU offload")
    p.add_argument("--vae-tiling", action="store_true", help="diffusers backbones: tiled VAE decode")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the backbone's)")
    p.add_argument("--guidance", type=float, default=None, help="guidance scale (default: the backbone's)")
    p.add_argument("--trajectory", action="store_true", help="record per-step latents and SDE log-probs for RL")
    p.add_argument("--sde-noise-level", type=float, default=0.7, help="SDE noise level when recording trajectories")
    p.add_argument("--planner", default="rule", choices=["rule", "llm"], help="PlanAgent (and refiner)")
    p.add_argument("--critic", default="perception", choices=["perception", "llm", "ensemble", "none"],
                   help="CriticAgent")
    p.add_argument("--llm-model", default="openai/gpt-4o-mini", help="LLM/VLM as provider/model")
    p.add_argument("--base-url", default="", help="OpenAI-compatible server, e.g. http://localhost:8000/v1")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--llm-timeout", type=float, default=60.0, help="seconds per LLM call before a retry")
    p.add_argument("--llm-retries", type=int, default=2, help="retries on timeouts, 429 and 5xx")
    p.add_argument("--prompts-dir", default="", help="folder with planner.md / critic.md / refiner.md overrides")
    p.add_argument("--memory", default="episode", choices=["episode", "reflective", "off"],
                   help="episode ledger (default), plus lessons across episodes (reflective), or off (ablation)")
    p.add_argument("--review", action="store_true",
                   help="pause before accepting each segment: approve it, or reject it with feedback")
    p.add_argument("--out", default="", help="folder for video.mp4, video.gif and summary.json")
    p.add_argument("--thread-id", default="", help="name of the episode thread (default: random)")
    p.add_argument("--workspace", default="", help="artifacts, checkpoints and traces (default: $SPIRAL_HOME or ./.spiral)")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="spiral", description="SPIRAL: closed-loop action-conditioned video generation")
    top.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = top.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the built-in scene and action on the simulated backbone")
    _add_run_options(demo)
    run = sub.add_parser("run", help="run an episode from a start image and an action")
    run.add_argument("--image", required=True, help="start image (PNG/JPEG path)")
    run.add_argument("--action", required=True, help="high-level action, e.g. 'put all red objects in the bowl'")
    _add_run_options(run)
    resume = sub.add_parser("resume", help="finish an interrupted episode")
    resume.add_argument("thread_id")
    resume.add_argument("--workspace", default="")
    answer = resume.add_mutually_exclusive_group()
    answer.add_argument("--approve", action="store_true", help="answer a pending review: accept the segment")
    answer.add_argument("--reject", metavar="FEEDBACK", default=None,
                        help="answer a pending review: reject the segment, saying what is wrong")
    sub.add_parser("backbones", help="list the registered video generators")
    draw = sub.add_parser("graph", help="print the graph as Mermaid (or write it into a README)")
    draw.add_argument("--readme", default="", help="rewrite the drawing between this file's graph markers")
    traces = sub.add_parser("traces", help="browse the trace database")
    tsub = traces.add_subparsers(dest="traces_command", required=True)
    tsub.add_parser("ls", help="episodes").add_argument("--workspace", default="")
    show = tsub.add_parser("show", help="every attempt of one episode")
    show.add_argument("thread_id")
    show.add_argument("--workspace", default="")
    texp = tsub.add_parser("export", help="attempts as JSONL or Parquet")
    texp.add_argument("--format", default="jsonl", choices=["jsonl", "parquet"])
    texp.add_argument("--out", required=True)
    texp.add_argument("--thread-id", default="")
    texp.add_argument("--workspace", default="")
    hist = sub.add_parser("history", help="a thread's checkpoints (for fork)")
    hist.add_argument("thread_id")
    hist.add_argument("--workspace", default="")
    fork = sub.add_parser("fork", help="replay a thread from a past checkpoint in a new thread")
    fork.add_argument("thread_id")
    fork.add_argument("--checkpoint", required=True, help="checkpoint id from `spiral history`")
    fork.add_argument("--instruction", "--action", dest="instruction", default=None,
                      help="a different instruction for the sub-action at that checkpoint")
    fork.add_argument("--new-thread-id", default="")
    fork.add_argument("--workspace", default="")
    gc = sub.add_parser("gc", help="delete artifacts no checkpoint or trace references")
    gc.add_argument("--dry-run", action="store_true")
    gc.add_argument("--workspace", default="")
    bench = sub.add_parser("bench", help="run the ActWM-Sim benchmark and write docs/benchmarks.md")
    bench.add_argument("--suite", default="actwm-sim", choices=["actwm-sim", "checkpoint-growth", "reflective-memory", "server"])
    bench.add_argument("--methods", default="open-loop,best-of-n,spiral,spiral-no-critic,spiral-no-memory,spiral-no-replan",
                       help="comma-separated methods")
    bench.add_argument("--split", default="test")
    bench.add_argument("--size", type=int, default=None, help="number of tasks (default: the whole split)")
    bench.add_argument("--seeds", type=int, default=3)
    bench.add_argument("--difficulty", default="medium")
    bench.add_argument("--workers", type=int, default=2, help="parallel worker processes")
    bench.add_argument("--results", default="bench_results.sqlite", help="results table; an interrupted bench resumes from it")
    bench.add_argument("--docs", default="docs", help="where benchmarks.md and img/ are written ('' to skip)")
    dataset = sub.add_parser("dataset", help="ActWM-Dataset tools")
    dsub = dataset.add_subparsers(dest="dataset_command", required=True)
    export = dsub.add_parser("export", help="write start images, actions, plans and ground-truth videos")
    export.add_argument("--split", default="train")
    export.add_argument("--out", required=True)
    export.add_argument("--size", type=int, default=None)
    export.add_argument("--frames", type=int, default=16)
    return top


def _context(args: argparse.Namespace) -> RunContext:
    from ..tools.video import backbone_info

    backbone_info(args.backbone)  # unknown backbone → one clear error
    if args.difficulty not in ("easy", "medium", "hard"):
        raise InputError(f"unknown difficulty {args.difficulty!r}; choose easy, medium or hard")
    if args.planner == "llm" or args.critic in ("llm", "ensemble"):
        from ..tools.llm import require_api_key

        require_api_key()
    if args.backbone != "sim":
        from ..tools.video.diffusers_backbone import validate

        validate(args.backbone, model=args.model, dtype=args.dtype, device=args.device, num_frames=args.frames,
                 height=args.height, width=args.width)
    return RunContext(backbone=args.backbone, difficulty=args.difficulty, seed=args.seed, num_frames=args.frames,
                      model=args.model, dtype=args.dtype, device=args.device, cpu_offload=args.cpu_offload,
                      vae_tiling=args.vae_tiling, num_inference_steps=args.steps, guidance_scale=args.guidance,
                      trajectory=args.trajectory, sde_noise_level=args.sde_noise_level,
                      planner=args.planner, critic=args.critic, llm_model=args.llm_model, base_url=args.base_url,
                      temperature=args.temperature, llm_timeout_s=args.llm_timeout, llm_retries=args.llm_retries,
                      prompts_dir=args.prompts_dir, memory=args.memory, review=args.review,
                      height=args.height, width=args.width, max_tries_per_segment=args.max_tries,
                      max_replans=args.max_replans, max_generator_calls=args.max_calls,
                      workspace=str(Path(args.workspace or default_workspace()).resolve()),
                      out_dir=str(Path(args.out).resolve()) if args.out else "")


def _stream(graph, payload: Any, config: dict, context: RunContext | None, workspace: str) -> list[dict]:
    """Run the graph, printing one line per plan, critique and accepted segment; returns the
    payloads of the interrupts it stopped at (a review waiting for an answer), if any."""
    from ..memory.artifacts import ArtifactStore
    from ..nodes.plan import load_plan

    console = _console()
    total = 0
    kwargs = {"context": context} if context is not None else {}
    asked: list[dict] = []
    for update in graph.stream(payload, config, stream_mode="updates", **kwargs):
        for node, delta in update.items():
            if node == "__interrupt__":
                asked.extend(i.value for i in delta)
                continue
            if not isinstance(delta, dict):
                continue
            if node == "plan" and delta.get("plan_ref"):
                plan = load_plan(ArtifactStore(Path(workspace) / "artifacts"), delta["plan_ref"])
                steps = plan.sub_actions
                total = len(steps)
                replanned = plan.version > 0
                shown = [s for s in steps if not replanned or s.index >= delta.get("cursor", 0)]
                label = "replanned the rest" if replanned else f"plan ({total} sub-actions)"
                console.print(f"[bold]{label}[/bold]")
                for s in shown:
                    console.print(f"  {s.index + 1}. {s.description}  → {', '.join(s.postconditions)}")
            elif node == "critique":
                a = delta["attempts"][-1]
                c = a.critique
                mark = "[green]pass[/green]" if c.passed else f"[red]fail[/red] ({c.failure})"
                console.print(f"  step {a.sub_action_index + 1} try {a.try_index + 1}: {mark}  {c.feedback}")
            elif node == "refine":
                console.print(f"    refine → {delta['instruction']}")
            elif node == "review":
                a = delta["attempts"][-1]
                console.print(f"    review: {a.review}" + (f" ({a.critique.feedback})" if a.review == "rejected" else ""))
            elif node == "finalize":
                console.print(f"[bold]{delta['status']}[/bold]: {delta['video']}")
    return asked


def _ask_reviewer(asked: dict, workspace: str, thread_id: str) -> Any | None:
    """Show the segment waiting for review and read an answer from the terminal; None when
    there is no terminal (the run stays paused, to be answered with `spiral resume`)."""
    from ..memory.artifacts import ArtifactStore
    from ..tools.media import write_gif

    frames = ArtifactStore(Path(workspace) / "artifacts").get_frames(asked["segment"])
    preview = write_gif(frames, Path(workspace) / "review" / f"{thread_id}.gif")
    console = _console()
    if asked.get("error"):
        console.print(f"[red]{asked['error']}[/red]")
    verdict = "passed" if asked["critic_passed"] else "did not pass"
    console.print(f"[bold]review[/bold] step {asked['sub_action'] + 1} ({asked['description']}), "
                  f"try {asked['try_index'] + 1}: the critic says it {verdict}: {asked['critic_feedback']}")
    console.print(f"  preview: {preview}")
    if not sys.stdin.isatty():
        console.print(f"paused for review; answer with: spiral resume {thread_id} --workspace {workspace} "
                      "--approve   (or --reject 'what is wrong')")
        return None
    try:
        reply = input("  approve? [Y]es / or type what is wrong to reject: ").strip()
    except EOFError:  # Ctrl-D: leave it paused, as without a terminal
        console.print(f"\nleft paused; answer later with: spiral resume {thread_id} --workspace {workspace}")
        return None
    return "approve" if reply.lower() in ("", "y", "yes") else {"decision": "reject", "feedback": reply}


def _stream_with_review(graph, payload: Any, config: dict, context: RunContext | None, workspace: str) -> bool:
    """Stream, answering review interrupts from the terminal; False if the run is left paused."""
    from langgraph.types import Command

    thread_id = config["configurable"]["thread_id"]
    asked = _stream(graph, payload, config, context, workspace)
    while asked:
        answer = _ask_reviewer(asked[0], workspace, thread_id)
        if answer is None:
            return False
        asked = _stream(graph, Command(resume=answer), config, context, workspace)
    return True


def _print_summary(summary_path: str) -> None:
    from rich.table import Table

    summary = json.loads(Path(summary_path).read_text())
    table = Table(title=f"{summary['action']}  [{summary['status']}]")
    for col in ("#", "sub-action", "tries", "result", "score"):
        table.add_column(col)
    for o, step in zip(summary["outcomes"], summary["plan"], strict=False):
        table.add_row(str(o["index"] + 1), step["description"], str(o["tries"]),
                      "pass" if o["passed"] else "best-effort", f"{o['score']:.2f}")
    console = _console()
    console.print(table)
    console.print(f"generator calls: {summary['generator_calls']}, replans: {summary['replans']}, "
                  f"frames: {summary['video_frames']}; summary: {summary_path}")


def _run_episode(image: str, action: str, context: RunContext, thread_id: str) -> None:
    from ..memory.checkpoints import open_checkpointer, where
    from ..nodes.plan import preflight
    from .workflow import build_graph, checkpoint_serde

    preflight(image, action, context)
    # the settings ride in the checkpoint metadata too, so a resume before the first step
    # finished (an LLM server that was down, say) still has them
    config = {"configurable": {"thread_id": thread_id},
              "metadata": {"spiral_settings": context.model_dump_json()}}  # metadata keeps strings only
    with open_checkpointer(context.workspace, checkpoint_serde()) as saver, \
            _memory_store(context.memory, context.workspace) as store:
        graph = build_graph(checkpointer=saver, store=store)
        if graph.get_state(config).values:
            raise InputError(f"thread {thread_id!r} already exists in {where(context.workspace)}; "
                             f"use `spiral resume {thread_id}` or another --thread-id")
        _console().print(f"thread {thread_id}  (resume with: spiral resume {thread_id} --workspace {context.workspace})")
        finished = _stream_with_review(graph, {"action": action, "image": str(Path(image).resolve())}, config,
                                       context, context.workspace)
        final = graph.get_state(config).values
    if finished:
        _print_summary(final["summary"])


def cmd_demo(args: argparse.Namespace) -> None:
    from ..tools.media import save_png
    from ..tools.world.demo import DEMO_ACTION, demo_scene
    from ..tools.world.render import render_scene

    context = _context(args)
    out = Path(args.out or "spiral_demo").resolve()
    context = context.model_copy(update={"out_dir": str(out)})
    start = save_png(render_scene(demo_scene(), context.height, context.width), out / "start.png")
    _console().print(f"demo: '{DEMO_ACTION}' on the SIMULATED backbone ({context.backbone}, {context.difficulty})")
    _run_episode(str(start), DEMO_ACTION, context, args.thread_id or f"demo-{uuid.uuid4().hex[:8]}")


def cmd_run(args: argparse.Namespace) -> None:
    context = _context(args)
    _run_episode(args.image, args.action, context, args.thread_id or f"run-{uuid.uuid4().hex[:8]}")


def cmd_resume(args: argparse.Namespace) -> None:
    from langgraph.types import Command

    from ..memory.checkpoints import has_checkpoints, open_checkpointer, where
    from .workflow import build_graph, checkpoint_serde

    workspace = str(Path(args.workspace or default_workspace()).resolve())
    if not has_checkpoints(workspace):
        raise ResumeError(f"no checkpoints in {workspace}; pass the --workspace the run used")
    config = {"configurable": {"thread_id": args.thread_id}}
    finished = True
    with contextlib.ExitStack() as stack:
        saver = stack.enter_context(open_checkpointer(workspace, checkpoint_serde()))
        graph = build_graph(checkpointer=saver)
        state = graph.get_state(config)
        if not state.values:
            raise ResumeError(f"no thread {args.thread_id!r} in {where(workspace)}")
        waiting = any(task.interrupts for task in state.tasks)
        answer = "approve" if args.approve else {"decision": "reject", "feedback": args.reject} \
            if args.reject is not None else None
        if answer is not None and not waiting:
            raise InputError(f"thread {args.thread_id!r} is not waiting for a review")
        store = stack.enter_context(_memory_store(_memory_of(graph, config), workspace))
        graph = build_graph(checkpointer=saver, store=store)
        if not state.next:
            _console().print(f"thread {args.thread_id} already finished")
        else:
            saved = (state.metadata or {}).get("spiral_settings")
            context = RunContext.model_validate_json(saved) if saved else None
            if saved:
                config = {**config, "metadata": {"spiral_settings": saved}}
            _console().print(f"resuming {args.thread_id} at {', '.join(state.next)}")
            if waiting and answer is None:
                asked = [i.value for task in state.tasks for i in task.interrupts]
                answer = _ask_reviewer(asked[0], workspace, args.thread_id)
                if answer is None:
                    return
            payload = Command(resume=answer) if waiting else None
            finished = _stream_with_review(graph, payload, config, context, workspace)
        final = graph.get_state(config).values
    if finished:
        _print_summary(final["summary"])


def cmd_backbones(args: argparse.Namespace) -> None:
    from ..tools.video import backbone_info, backbone_names

    from ..tools.video.diffusers_backbone import SPECS

    for name in backbone_names():
        info = backbone_info(name)
        print(f"{name:16s} {'GPU' if info.needs_gpu else 'CPU'}  {info.description}")
        if name in SPECS:
            spec = SPECS[name]
            print(f"{'':21s}frames {spec.frame_multiple}k+1, sides multiple of {spec.size_multiple}, "
                  f"{spec.steps} steps, guidance {spec.guidance}; options: --model --dtype --device "
                  "--cpu-offload --vae-tiling")


def _memory_store(memory: str, workspace: str):
    """The reflective-memory store (workspace/memory.sqlite, or PostgreSQL) when the run uses it."""
    if memory != "reflective":
        return contextlib.nullcontext(None)
    from ..memory.checkpoints import open_store

    return open_store(workspace)


def _memory_of(graph, config: dict) -> str:
    settings = (graph.get_state(config).values or {}).get("settings")
    return settings.memory if settings is not None else "episode"


def commands() -> dict:
    from . import cli_tools

    return {"demo": cmd_demo, "run": cmd_run, "resume": cmd_resume, "backbones": cmd_backbones,
            "bench": cli_tools.cmd_bench, "dataset": cli_tools.cmd_dataset, "traces": cli_tools.cmd_traces,
            "history": cli_tools.cmd_history, "graph": cli_tools.cmd_graph, "fork": cli_tools.cmd_fork, "gc": cli_tools.cmd_gc}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        commands()[args.command](args)
    except SpiralError as exc:
        print(f"spiral: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("spiral: interrupted; resume with `spiral resume THREAD_ID`", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
