"""`spiral train collect | grpo | dpo`: rollouts through the graph, then a LoRA trained on them.

`collect` runs ActWM-Sim tasks through the session driver with trajectories on
and `--group G` samples per try (the graph's own loop: plan, generate G,
critique all, keep the best); a rerun skips finished episodes. `grpo` and `dpo`
replay the workspace's groups (training/replay.py) and train a LoRA under
accelerate, resuming from the newest saved state in `--out`; the adapter lands
in `OUT/adapter`, for `spiral run --lora OUT/adapter`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..tools.errors import InputError
from .cli_options import add_context_options, context_from_args
from .console import console


def add_parsers(sub) -> None:
    train = sub.add_parser("train", help="collect rollouts and train the generator on them (GRPO, DPO)")
    tsub = train.add_subparsers(dest="train_command", required=True)
    collect = tsub.add_parser("collect", help="rollouts with trajectories and groups, through the graph")
    collect.add_argument("--split", default="train", help="ActWM-Sim split the tasks come from")
    collect.add_argument("--size", type=int, default=8, help="number of tasks")
    add_context_options(collect)
    for method in ("grpo", "dpo"):
        p = tsub.add_parser(method, help=f"train a LoRA with {'Flow-GRPO' if method == 'grpo' else 'Diffusion-DPO'} "
                                         "on a workspace's groups")
        p.add_argument("--workspace", required=True, help="where `spiral train collect` recorded the rollouts")
        p.add_argument("--out", required=True, help="training folder: state/, metrics.csv, curves.png, adapter/")
        p.add_argument("--recipe", default="", help="named defaults: tiny-cpu, wan-1gpu (docs/training.md)")
        p.add_argument("--epochs", type=int, default=4, help="passes over the samples")
        p.add_argument("--lr", type=float, default=None, help="learning rate (default: the recipe's)")
        p.add_argument("--reward", action="append", default=[], metavar="NAME=WEIGHT",
                       help="a reward term and its weight, repeatable (default: success=1, "
                            "score:action_completion=0.5)")
        p.add_argument("--device", default="auto")
        p.add_argument("--dtype", default="auto")


def _weights(pairs: list[str]):
    from ..training.rewards import RewardWeights

    if not pairs:
        return RewardWeights()
    weights = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            weights[name] = float(value) if sep else 1.0
        except ValueError:
            raise InputError(f"--reward {pair}: the weight must be a number (NAME=WEIGHT)") from None
    try:
        return RewardWeights(weights=weights)
    except ValueError as exc:
        raise InputError(f"--reward: {_reason(exc)}") from None


def _reason(exc: ValueError) -> str:
    """One line: pydantic's first error message, or the exception's first line."""
    errors = getattr(exc, "errors", None)
    return errors()[0]["msg"] if callable(errors) else str(exc).splitlines()[0]


def cmd_train(args: argparse.Namespace) -> None:
    {"collect": _collect, "grpo": _train, "dpo": _train}[args.train_command](args)


def _collect(args: argparse.Namespace) -> None:
    from rich.progress import track

    from ..bench.tasks import build_suite
    from ..tools.media import save_png
    from ..tools.world.render import render_scene
    from .session import Session

    context = context_from_args(args, trajectory=True)
    if context.backbone == "sim":
        raise InputError("the sim backbone has no latents to record: collect with a diffusers backbone "
                         "(--backbone tiny-wan on a CPU)")
    context.check_backbone()
    tasks = build_suite(args.split, args.size)
    workspace = Path(context.workspace)
    done = skipped = 0
    failed: list[str] = []
    with Session(workspace) as session:
        for task in track(tasks, description=f"collecting {len(tasks)} tasks (G={context.group_size})",
                          console=console()):
            thread = f"collect-{task.id}-s{context.seed}"
            state = session.state(thread)
            if state is not None and state.summary:
                skipped += 1
                continue
            image = save_png(render_scene(task.scene, context.height, context.width),
                             workspace / "inputs" / f"{task.id}.png")
            try:
                session.start(task.action, str(image), context, thread)
                done += 1
            except InputError as exc:  # one task the planner cannot read at this size: say so, go on
                failed.append(f"{task.id}: {exc}")
    for line in failed:
        console().print(f"skipped {line}")
    console().print(f"collected {done} episodes ({skipped} already there, {len(failed)} failed) in {workspace} "
                    f"with {context.backbone}, groups of {context.group_size}")
    if not done and not skipped:
        raise InputError("no episode could be collected (see above); larger frames help the planner see the scene")


def _train(args: argparse.Namespace) -> None:
    from rich.progress import track

    from ..tools.video import load_generator
    from ..training import replay
    from ..training.config import DPOConfig, GRPOConfig, config_for

    out = Path(args.out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder for the training run")
    weights = _weights(args.reward)
    grpo = args.train_command == "grpo"
    overrides = {"rewards": weights} | ({"learning_rate": args.lr} if args.lr is not None else {})
    try:
        config = config_for(GRPOConfig if grpo else DPOConfig, args.recipe, **overrides)
    except ValueError as exc:
        raise InputError(_reason(exc)) from None
    data, stats = (replay.grpo_samples if grpo else replay.dpo_pairs)(args.workspace, weights)
    generator = load_generator(stats.backbone, model="" if stats.model.startswith("<") else stats.model,
                               dtype=args.dtype, device=_device(args.device), cpu_offload=False, vae_tiling=False,
                               lora="")
    trainer = _trainer(grpo, generator, stats, config, out)
    done = trainer.resume()
    per_pass = trainer.steps_per_pass(len(data))
    counts = {"groups": float(stats.groups), "samples": float(stats.samples),
              "groups_skipped_equal": float(stats.skipped_equal), "unscored": float(stats.unscored)}
    for epoch in track(range(done // per_pass, args.epochs), description=f"{args.train_command} on {len(data)} "
                       f"{'samples' if grpo else 'pairs'}", console=console()):
        skip = done - epoch * per_pass if epoch == done // per_pass else 0
        t0 = time.perf_counter()
        metrics = trainer.train(data, skip_steps=skip) if grpo else trainer.train(data, epoch, skip_steps=skip)
        step_s = (time.perf_counter() - t0) / max(per_pass - skip, 1)
        trainer.log({**metrics, **counts, "epoch": float(epoch), "step_s": step_s})
    adapter = trainer.save_adapter(notes=f"{args.train_command} on {args.workspace}: {stats.groups} groups")
    trainer.finish()
    console().print(f"{args.train_command}: {trainer.steps} optimizer steps; adapter in {adapter} "
                    f"(use: spiral run --backbone {stats.backbone} --lora {adapter}); metrics in {out / 'metrics.csv'}")


def _device(device: str) -> str:
    """`auto` under a multi-process launcher is this process's own GPU (LOCAL_RANK), not every process's cuda:0."""
    import os

    import torch

    rank = os.environ.get("LOCAL_RANK")
    if device == "auto" and rank is not None and torch.cuda.is_available():
        return f"cuda:{rank}"
    return device


def _trainer(grpo: bool, generator, stats, config, out: Path):
    from ..training.dpo import DiffusionDPO
    from ..training.flow_grpo import FlowGRPO

    base = stats.model or generator.source
    return (FlowGRPO if grpo else DiffusionDPO)(generator.pipe, stats.backbone, base, config, out)
