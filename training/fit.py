"""Train a LoRA on a workspace's recorded groups, from the command line or a training loop.

Loads the backbone that sampled the rollouts (the weights their trajectories
name), adds the adapter (fresh, or continuing `init_adapter`), resumes from the
newest saved state in `out`, trains `epochs` passes, saves the adapter, and
takes it off the shared pipeline again so the process can sample with the base
model or load the next round's adapter.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

from pydantic import BaseModel

from ..tools.errors import InputError
from ..tools.video import load_generator
from ..vocabulary.environment import launcher_rank
from . import replay
from .config import DPOConfig, GRPOConfig, TrainerSettings
from .replay import ReplayStats


class FitResult(BaseModel):
    adapter: Path
    optimizer_steps: int
    stats: ReplayStats


def process_device(device: str) -> str:
    """`auto` under a multi-process launcher is this process's own GPU (LOCAL_RANK), not every process's cuda:0."""
    import torch

    rank = launcher_rank()
    if device == "auto" and rank is not None and torch.cuda.is_available():
        return f"cuda:{rank}"
    return device


def check_policy(stats: ReplayStats, workspace: str | Path, init_adapter: str | Path | None) -> None:
    """GRPO's ratio compares the trained policy with the one that sampled: the run must start from the adapter the
    rollouts were drawn with (none, for the base weights), or every ratio is off-policy from the first step."""
    from ..tools.video.adapters import adapter_identity, check_adapter

    if init_adapter:
        check_adapter(init_adapter, stats.backbone)
    start = adapter_identity(init_adapter) if init_adapter else ""
    sampled = stats.adapters or [""]
    if len(sampled) > 1:
        raise InputError(f"the rollouts in {workspace} were drawn with {len(sampled)} different adapters "
                         f"({', '.join(a or 'the base weights' for a in sampled)}): train on one policy's rollouts")
    if sampled[0] != start:
        drawn = f"adapter {sampled[0]}" if sampled[0] else "the base weights"
        given = f"adapter {start}" if start else "a fresh adapter (the base weights)"
        hint = f"--init-adapter {sampled[0].rsplit('@', 1)[0]}" if sampled[0] else "no --init-adapter"
        raise InputError(f"the rollouts in {workspace} were drawn with {drawn} but this run starts from {given}: "
                         f"pass {hint} (GRPO's ratio needs the policy that sampled them)")


def fit(method: str, workspace: str | Path, out: str | Path, config: TrainerSettings, epochs: int,
        device: str = "auto", dtype: str = "auto", init_adapter: str | Path | None = None,
        progress: Callable[[Iterable[int], str], Iterable[int]] = lambda it, _: it) -> FitResult:
    """`method` is grpo or dpo; `config` a GRPOConfig or DPOConfig to match."""
    from .dpo import DiffusionDPO
    from .flow_grpo import FlowGRPO

    out = Path(out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder for the training run")
    grpo = method == "grpo"
    assert isinstance(config, GRPOConfig if grpo else DPOConfig)
    data, stats = replay.grpo_samples(workspace, config.rewards) if grpo else \
        replay.dpo_pairs(workspace, config.rewards, config.pairs)
    if grpo:
        check_policy(stats, workspace, init_adapter)
    generator = load_generator(stats.backbone, model="" if stats.model.startswith("<") else stats.model, dtype=dtype,
                               device=process_device(device), cpu_offload=False, vae_tiling=False, lora="")
    trainer = (FlowGRPO if grpo else DiffusionDPO)(generator.pipe, stats.backbone, stats.model or generator.source,
                                                   config, out, init_adapter)
    try:
        done = trainer.resume()
        per_pass = trainer.steps_per_pass(len(data))
        counts = {"groups": float(stats.groups), "samples": float(stats.samples),
                  "groups_skipped_equal": float(stats.skipped_equal), "unscored": float(stats.unscored)}
        label = f"{method} on {len(data)} {'samples' if grpo else 'pairs'}"
        for epoch in progress(range(done // per_pass, epochs), label):
            skip = done - epoch * per_pass if epoch == done // per_pass else 0
            t0 = time.perf_counter()
            metrics = trainer.train(data, skip_steps=skip) if grpo else trainer.train(data, epoch, skip_steps=skip)
            step_s = (time.perf_counter() - t0) / max(per_pass - skip, 1)
            trainer.log({**metrics, **counts, "epoch": float(epoch), "step_s": step_s})
        adapter = trainer.save_adapter(notes=f"{method} on {workspace}: {stats.groups} groups")
        return FitResult(adapter=adapter, optimizer_steps=trainer.steps, stats=stats)
    finally:
        trainer.close()
