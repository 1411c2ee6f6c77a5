"""`spiral train pretrain | collect | grpo | dpo | loop`: the learned model, rollouts, a LoRA trained on them.

`pretrain` trains `tabletop-tiny` from the world's error-free segments
(training/pretrain.py), resuming what `--out` holds.

`collect` runs ActWM-Sim tasks through the session driver with trajectories on
and `--group G` samples per try (the graph's own loop: plan, generate G,
critique all, keep the best); a rerun skips finished episodes. `grpo` and `dpo`
replay the workspace's groups (training/replay.py) and train a LoRA under
accelerate, resuming from the newest saved state in `--out`; the adapter lands
in `OUT/adapter`, for `spiral run --lora OUT/adapter`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..tools.errors import InputError
from ..training.config import FitOptions, LoopOptions, PretrainConfig
from .cli_options import (
    add_context_options,
    add_model_options,
    context_from_args,
    model_from_args,
)
from .console import console


def add_parsers(sub) -> None:
    train = sub.add_parser("train", help="collect rollouts and train the generator on them (GRPO, DPO)")
    tsub = train.add_subparsers(dest="train_command", required=True)
    collect = tsub.add_parser("collect", help="rollouts with trajectories and groups, through the graph")
    collect.add_argument("--split", choices=("train", "val", "test"), default="train",
                         help="ActWM-Sim split the tasks come from (default: train)")
    collect.add_argument("--size", type=_positive, default=8, help="number of tasks (default: 8)")
    collect.add_argument("--server", action="append", default=[], metavar="URL",
                         help="run the episodes on this LangGraph server (repeat for a fleet sharing one PostgreSQL "
                              "and artifact store; bearer token from SPIRAL_SERVER_TOKEN); a rerun submits only "
                              "what is missing, and a server that stops answering hands its episodes to the next")
    collect.add_argument("--concurrency", type=_positive, default=2,
                         help="episodes in flight per server with --server (default: 2)")
    add_context_options(collect)
    pre = tsub.add_parser("pretrain", help="train the tabletop-tiny video model from the world's error-free segments "
                                           "(the shipped recipe: about an hour on 2 CPU cores; reruns resume)")
    pre.add_argument("--out", required=True, help="run folder: data/, state/, metrics.csv, curves.png, samples/, "
                                                  "pipeline/ (use: spiral run --backbone tabletop-tiny --model OUT/pipeline)")
    _pretrain_options(pre)
    loop = tsub.add_parser("loop", help="rounds of collect (with the current adapter), train, evaluate on held-out "
                                        "tasks; warns when training reward rises while held-out reward falls")
    add_model_options(loop, LoopOptions)
    _training_options(loop, skip=("device", "dtype", "init_adapter"))
    add_context_options(loop)
    for method in ("grpo", "dpo"):
        p = tsub.add_parser(method, help=f"train a LoRA with {'Flow-GRPO' if method == 'grpo' else 'Diffusion-DPO'} "
                                         "on a workspace's groups")
        p.add_argument("--workspace", required=True, help="where `spiral train collect` recorded the rollouts")
        p.add_argument("--out", required=True, help="training folder: state/, metrics.csv, curves.png, adapter/")
        _training_options(p)


def _positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def _pretrain_options(p: argparse.ArgumentParser) -> None:
    add_model_options(p, PretrainConfig)
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop at this wall time, saving the state (in stage 2 the pipeline is written as it is then); "
                        "the same command again resumes (default: no limit)")


def _training_options(p: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    add_model_options(p, FitOptions, skip=skip)
    p.add_argument("--reward", action="append", default=[], metavar="NAME=WEIGHT",
                   help="a reward term and its weight, repeatable (default: success=1, score:action_completion=0.5)")
    p.add_argument("--reward-missing", action="append", default=[], metavar="NAME=VALUE",
                   help="the value a weighted term takes when a judged attempt lacks it, e.g. "
                        "evidence:goal_distance=100 when the subject vanished (default: such attempts are not scored)")


def _weights(pairs: list[str], missing_pairs: list[str] = ()):
    from ..training.rewards import RewardWeights

    weights = _named_numbers(pairs, "--reward", "WEIGHT", default=1.0) or RewardWeights().weights
    missing = _named_numbers(missing_pairs, "--reward-missing", "VALUE", default=None)
    try:
        return RewardWeights(weights=weights, missing=missing)
    except ValueError as exc:
        raise InputError(f"--reward: {_reason(exc)}") from None


def _named_numbers(pairs: list[str], option: str, what: str, default: float | None) -> dict[str, float]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            out[name] = float(value) if sep or default is None else default
        except ValueError:
            raise InputError(f"{option} {pair}: the {what.lower()} must be a number (NAME={what})") from None
    return out


def _reason(exc: ValueError) -> str:
    """One line: pydantic's first error message, or the exception's first line."""
    errors = getattr(exc, "errors", None)
    return errors()[0]["msg"].removeprefix("Value error, ") if callable(errors) else str(exc).splitlines()[0]


def cmd_train(args: argparse.Namespace) -> None:
    {"pretrain": _pretrain, "collect": _collect, "grpo": _train, "dpo": _train, "loop": _loop}[args.train_command](args)


def _pretrain(args: argparse.Namespace) -> None:
    import sys

    from ..bench.segments import train_segments
    from ..tools.video.diffusers_specs import require_torch
    from ..training.config import PretrainConfig
    from ..training.pretrain import Stopped, pretrain

    require_torch("tabletop-tiny")
    config = model_from_args(PretrainConfig, args)
    if args.max_minutes is not None and not 0 < args.max_minutes < float("inf"):
        raise InputError(f"--max-minutes must be a positive number of minutes, got {args.max_minutes:g}")
    if config.vae_from and not (Path(config.vae_from) / "vae").is_dir():
        raise InputError(f"--vae-from {config.vae_from}: no vae/ folder there (give a tabletop-tiny pipeline folder, "
                         "e.g. the pipeline/ that `spiral train pretrain` wrote)")
    try:
        pipeline = pretrain(train_segments(config.examples, seed=config.seed), args.out, config,
                            progress=sys.stderr.isatty(), max_minutes=args.max_minutes)
    except Stopped as exc:
        console().print(f"pretrain: stopped by --max-minutes: {exc}; run the same command again to go on")
        return
    console().print(f"pretrain: the pipeline is in {pipeline} (use: spiral run --backbone tabletop-tiny --model "
                    f"{pipeline}); curves in {Path(args.out) / 'curves.png'}, samples in {Path(args.out) / 'samples'}")


def _rollout_context(args: argparse.Namespace):
    """The run context of rollouts (trajectories on), refused for the simulator, which has no latents."""
    context = context_from_args(args, trajectory=True)
    if context.backbone == "sim":
        raise InputError("the sim backbone has no latents to record or weights to train: use a diffusers backbone "
                         "(--backbone tiny-wan on a CPU)")
    context.check_backbone()
    return context


def _collect(args: argparse.Namespace) -> None:
    if args.server:
        return _collect_on_fleet(args)
    context = _rollout_context(args)
    if not _run_tasks(context, args.split, args.size, "collect"):
        raise InputError("no episode could be collected (see above); larger frames help the planner see the scene")


def _collect_on_fleet(args: argparse.Namespace) -> None:
    """`collect --server`: the episodes on a LangGraph fleet (graph/fleet.py). The simulator is allowed here
    (no trajectories: its episodes exercise and measure the fleet, they train nothing)."""
    from ..graph.fleet import Fleet
    from ..training.collect import run_tasks_on_fleet
    from ..vocabulary.environment import environment

    if args.workspace:
        raise InputError("--workspace with --server: the servers keep the episodes in their own database and "
                         "artifact store (train from them with SPIRAL_DATABASE_URI and SPIRAL_ARTIFACTS_URL)")
    context = context_from_args(args, trajectory=args.backbone != "sim")
    context.check_backbone()
    fleet = Fleet(args.server, environment().backbone_setting("server_token"), concurrency=args.concurrency)
    report = run_tasks_on_fleet(context, args.split, args.size, "collect", fleet, _counted_progress)
    for outcome in report.failed:
        console().print(f"failed {outcome.name} (thread {outcome.thread_id}): {outcome.reason}")
    console().print(f"collect: {report.count('started')} episodes started, {report.count('resumed')} resumed, "
                    f"{report.count('kept')} already there, {len(report.failed)} failed, on {len(args.server)} "
                    f"server(s) in {report.seconds:.1f} s ({report.moves} moved off a server that stopped answering)")
    if report.failed:
        raise InputError(f"{len(report.failed)} of {len(report.outcomes)} episodes failed (see above); run the same "
                         "command again to retry them")


def _counted_progress(items, label: str, total: int):
    from rich.progress import track

    return track(items, description=label, total=total, console=console())


def _run_tasks(context, split: str, size: int, prefix: str) -> int:
    """Tasks through the session driver (training/collect.py), said in a line; returns the episodes there now."""
    from ..training.collect import run_tasks

    collected = run_tasks(context, split, size, prefix, _progress)
    for line in collected.failed:
        console().print(f"skipped {line}")
    console().print(f"{prefix}: {collected.started} episodes started, {collected.resumed} resumed, {collected.kept} "
                    f"already there, {len(collected.failed)} failed, in {context.workspace} with {context.backbone}, "
                    f"groups of {context.group_size}")
    return collected.episodes


def _loop(args: argparse.Namespace) -> None:
    """Rounds of collect, train and evaluate (training/loop.py)."""
    from ..training.loop import run_loop

    options, fit_options = model_from_args(LoopOptions, args), model_from_args(FitOptions, args)
    base = _rollout_context(args)
    run_loop(base, options, fit_options, _config(args, options.method, fit_options), say=console().print,
             progress=_progress)


def _config(args: argparse.Namespace, method: str, options: FitOptions):
    from ..training.config import DPOConfig, GRPOConfig, config_for

    overrides = {"rewards": _weights(args.reward, args.reward_missing)}
    if options.lr is not None:
        overrides["learning_rate"] = options.lr
    if method == "dpo":
        overrides["pairs"] = options.pairs
        if options.ratio_norm or options.timestep_fraction is not None:
            raise InputError("--ratio-norm and --timestep-fraction are GRPO's; DPO has no ratio and no trajectory "
                             "steps")
    else:
        overrides["ratio_norm"] = options.ratio_norm
        if options.timestep_fraction is not None:
            overrides["timestep_fraction"] = options.timestep_fraction
        if options.pairs != "group":
            raise InputError("--pairs chooses DPO's preference pairs; GRPO learns from whole groups")
    try:
        return config_for(GRPOConfig if method == "grpo" else DPOConfig, options.recipe, **overrides)
    except ValueError as exc:
        raise InputError(_reason(exc)) from None


def _progress(items, label: str):
    from rich.progress import track

    return track(items, description=label, console=console())


def _train(args: argparse.Namespace) -> None:
    from ..training.fit import fit

    method = args.train_command
    options = model_from_args(FitOptions, args)
    result = fit(method, args.workspace, args.out, _config(args, method, options), options.epochs, options.device,
                 options.dtype, init_adapter=options.init_adapter or None, progress=_progress)
    console().print(f"{method}: {result.optimizer_steps} optimizer steps; adapter in {result.adapter} (use: spiral run "
                    f"--backbone {result.stats.backbone} --lora {result.adapter}); metrics in "
                    f"{result.adapter.parent / 'metrics.csv'}")
