"""Pre-train `tabletop-tiny` from the world's error-free segments: the autoencoder, then the denoiser.

Stage 1 trains the Wan VAE on 9-frame clips (the first frame alone, then two
chunks of four: the second reads the first's cached features, as every later
chunk of a longer video does; trained on one chunk only, later chunks decode
to garbage) with an L1 loss that weights object pixels up and a small KL term. Stage 2 encodes the pool once and trains the transformer
by flow matching exactly as the pipeline samples: the first latent frame is
the clean condition with timestep 0, the others are noised at a shifted
sigma, the target is the velocity (noise - clean), the loss is taken on the
frames the model must make. Prompts are dropped 10 % of the time (classifier-
free guidance stays possible). An EMA of the transformer is what is saved.

Everything is resumable: each stage saves its state atomically every
`save_every` steps and a rerun of the same command goes on from the newest
one. Per run folder: `metrics.csv`, `curves.png`, `samples/step-N.png`
(held-out segments: ground truth above, the model below) and, at the end,
`pipeline/` (save_pretrained, loadable with `--model`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..tools.video.tabletop import NATIVE_FRAMES, NATIVE_SIDE, tabletop_tiny_pipeline
from .config import PretrainConfig
from .pretrain_common import Deadline, Metrics, precision, train_device
from .pretrain_data import Example, encode_pool, make_pool
from .pretrain_denoiser import goal_mask, train_denoiser, with_transformer
from .pretrain_vae import train_vae


class Stopped(Exception):
    """`--max-minutes` ran out before the autoencoder was done: its state is saved, there is no pipeline yet."""


def pretrain(examples: Iterable[Example], out: str | Path, config: PretrainConfig | None = None,
             progress: bool = True, max_minutes: float | None = None) -> Path:
    """Both stages into `out` (resuming what is there); returns the trained pipeline's folder.

    With `max_minutes`, a stage that reaches the limit saves its state and stops: in stage 2 the pipeline is
    written from the EMA as it is then (the model card says at which step), in stage 1 `Stopped` is raised.
    Either way the same call again resumes."""
    config = config or PretrainConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(config.model_dump_json(indent=2))
    started = time.perf_counter()
    deadline = Deadline(max_minutes * 60 if max_minutes else None)
    data = make_pool(examples, config.examples, out / "data", progress)
    ids = np.arange(len(data.prompts))
    val_ids, train_ids = ids[-config.held_out:], ids[:-config.held_out]
    given = _given_vae(config.vae_from) if config.vae_from else None
    pipe = tabletop_tiny_pipeline(config.seed, width=config.width, layers=config.layers, vae=given)
    pipe.to(train_device())
    pipe.set_progress_bar_config(disable=True)
    metrics = Metrics(out)
    vae_done = train_vae(pipe, data.frames, train_ids, config, out, metrics, progress, deadline)
    if vae_done < config.vae_steps:
        raise Stopped(f"the time limit came in stage 1 at step {vae_done} of {config.vae_steps}; its state is saved")
    shown_goal = goal_mask(len(data.prompts), config.no_goal_share, config.seed)
    pool = encode_pool(pipe.vae, data, out / "data", shown_goal, progress=progress)
    pipe.vae.register_to_config(latents_mean=pool["mean"].tolist(), latents_std=pool["std"].tolist())
    ema, done = train_denoiser(pipe, pool, data, shown_goal, train_ids, val_ids, config, out, metrics, progress,
                               deadline)
    final = with_transformer(pipe, ema)
    final.save_pretrained(out / "pipeline")
    elapsed = time.perf_counter() - started
    (out / "wall_seconds.txt").write_text(f"{elapsed:.0f}\n")  # this invocation's time (a resumed run adds its own)
    (out / "pipeline" / "MODEL_CARD.md").write_text(model_card(final, config, metrics, elapsed, done))
    return out / "pipeline"


def _given_vae(folder: str):
    """The autoencoder of a pipeline folder, its architecture and weights both (the shipped one is 8x, the
    default new one 4x): the denoiser is then built around its latent channels and scale."""
    from diffusers import AutoencoderKLWan

    path = Path(folder) / "vae" / "diffusion_pytorch_model.safetensors"
    if not path.exists():
        raise ValueError(f"--vae-from {folder}: no {path.relative_to(folder)} there (give a tabletop-tiny pipeline "
                         "folder, e.g. one `spiral train pretrain` wrote)")
    return AutoencoderKLWan.from_pretrained(Path(folder) / "vae")


def _steps(done: int, planned: int) -> str:
    return f"{done} steps" if done == planned else f"{done} steps of {planned} planned (stopped by --max-minutes)"


def _where() -> str:
    device = train_device()
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{torch.get_num_threads()} CPU threads"


def model_card(pipe: Any, config: PretrainConfig, metrics: Metrics, seconds: float, steps_done: int) -> str:
    """What the weights are, what they saw, how long they took, and how they did on held-out segments."""
    def last(name: str) -> str:
        values = [r[name] for r in metrics.rows if name in r]
        return f"{values[-1]:.4f}" if values else "n/a"

    def params(module: Any) -> str:
        return f"{sum(p.numel() for p in module.parameters()) / 1e6:.2f} M"

    vae, crop = pipe.vae.config, (f"{config.vae_crop}x{config.vae_crop} squares centred on objects four times in "
                                   "five" if config.vae_crop else "whole frames")
    return "\n".join([
        "# tabletop-tiny", "",
        "A small learned text+image-to-video model of SPIRAL's procedural tabletop world: a Wan-I2V-shaped "
        "diffusers `WanImageToVideoPipeline` (the condition on channels: a mask, the first frame and, as "
        "`last_image`, the planner's goal sketch), trained from scratch by `spiral train pretrain` "
        "(training/pretrain.py). Random-initialised, no external weights or data.", "",
        "## Parts", "",
        f"- VAE (Wan, patchified and residual, {vae.scale_factor_spatial}x spatial, per frame, {vae.z_dim} channels): "
        f"{params(pipe.vae)}",
        f"- Transformer ({config.layers} blocks of width {config.width}, {pipe.transformer.config.patch_size[1]}x"
        f"{pipe.transformer.config.patch_size[2]} latent patches): {params(pipe.transformer)}",
        f"- Text encoder (UMT5, 2 layers, frozen at its random initialisation; word-level tokenizer over the "
        f"world's words): {params(pipe.text_encoder)}",
        f"- Makes {NATIVE_FRAMES} frames of {NATIVE_SIDE}x{NATIVE_SIDE}; {config.sample_steps} Euler steps, guidance 1.",
        "- Given a goal (`SegmentRequest.goal`, which SPIRAL's planner reads from the conditioning frame), it is "
        "shown its sketch: the moving objects cut from the first frame and pasted where they should end, on the "
        "frame's table colour. Without one it renders from the prompt alone.", "",
        "## Data", "",
        f"{config.examples} single sub-action segments rendered without errors by the world's ground-truth executor "
        "from ActWM-Sim train-split tasks (and further draws of the train split's generator), each with the "
        "instruction SPIRAL's planner writes for it (refinement phrases added at random) and its hindsight goal "
        "(each mover's box in the first frame, the point the executor took it to). The test split was never "
        f"drawn from. {config.held_out} pool segments were held out.", "",
        "## Training", "",
        f"- Autoencoder: {f'from {config.vae_from}, then ' if config.vae_from else ''}{config.vae_steps} steps, batch "
        f"{config.vae_batch} clips of {config.vae_clip_frames} frames ({crop}), L1 with object pixels weighted "
        f"{1 + config.foreground_weight:g}x against the background (the per-pixel median of the pool's first frames), "
        f"outlines {config.edge_weight:g} and corners {config.corner_weight:g} more, + {config.kl_weight:g} KL, AdamW "
        f"{config.vae_lr:g}.",
        f"- Denoiser: {_steps(steps_done, config.steps)}, batch {config.batch}, flow matching (shift "
        f"{config.shift:g}) weighted {1 + config.motion_weight:g}x where the clip changes, AdamW {config.lr:g}, prompt "
        f"dropout {config.prompt_dropout:g}, {100 * config.no_goal_share:g} % of segments without their goal, EMA "
        f"{config.ema:g} (the EMA is what is saved).",
        f"- Precision: {'bf16 autocast' if precision(config) == 'bf16' else 'float32'}. Wall time of the invocation "
        f"that finished these weights: {seconds / 60:.1f} min on {_where()} (a resumed run's earlier invocations add "
        "theirs).", "",
        "## Held-out figures (the held-out pool segments)", "",
        f"- Autoencoder L1 (last logged, training clips): {last('vae_l1')}",
        f"- Flow-matching loss of the EMA model on held-out segments: {last('val_flow_loss')}",
        "- One segment at a time, judged: docs/tabletop-tiny.md (`python -m spiral.bench.heldout_segments`).",
        "- Task success under the loop, scored by the independent judge: docs/benchmarks.md, `spiral bench "
        "--suite tabletop-tiny`.", ""])
