"""Stage 2 of `tabletop-tiny` pre-training: the denoiser, by flow matching exactly as the pipeline samples.

Every segment and its condition were encoded once (pretrain_data.encode_pool). The
pipeline is Wan2.1-I2V-shaped: the condition (a mask channel, then the latents of
the first frame, empty frames and the goal sketch) is concatenated after the noisy
latents on channels, one timestep per sample; the target is the velocity (noise -
clean) on every frame. A share of samples gets no goal (the pipeline's condition
without `last_image`), so the model also works from the prompt alone; prompts are
dropped 10 % of the time (classifier-free guidance stays possible). The loss is
weighted up where the clip changes. An EMA of the transformer is what is saved.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..tools.video.base import GoalMove
from ..tools.video.diffusers_backbone import pipeline_frames
from ..tools.video.goal_sketch import goal_sketch
from ..tools.video.tabletop import MAX_PROMPT_TOKENS, NATIVE_FRAMES, NATIVE_SIDE
from .config import PretrainConfig
from .metrics import MetricsLog
from .pretrain_common import (
    Deadline,
    Rng,
    check_finite,
    precision,
    resume_state,
    save_state,
)
from .pretrain_data import Pool


def _sigmas(n: int, shift: float, generator: torch.Generator) -> torch.Tensor:
    u = torch.rand(n, generator=generator)
    return shift * u / (1 + (shift - 1) * u)


def flow_loss(transformer: Any, latents: torch.Tensor, condition: torch.Tensor, text: torch.Tensor,
              sigmas: torch.Tensor, noise: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """The pipeline's own parametrisation (Wan2.1-I2V: the condition's channels after the noisy latents, one
    timestep per sample): every latent frame noised at `sigmas`, velocity target; `weight` per latent position
    (normalised, so it moves the loss's emphasis, not its scale)."""
    s = sigmas.view(-1, 1, 1, 1, 1)
    noisy = (1 - s) * latents + s * noise
    hidden = torch.cat([noisy, condition], dim=1)
    pred = transformer(hidden_states=hidden, timestep=sigmas * 1000, encoder_hidden_states=text, return_dict=False)[0]
    error = (pred.float() - (noise - latents)) ** 2
    if weight is None:
        return error.mean()
    return (error * weight).mean() / weight.mean()


def motion_weight(latents: torch.Tensor, extra: float, threshold: float) -> torch.Tensor | None:
    """1 + `extra` where a latent position differs from the first frame's by more than `threshold` (channel
    mean of the normalised latents): where the clip changes, a few per cent of positions that a uniform loss
    lets the still table outweigh. None when `extra` is 0."""
    if extra == 0:
        return None
    change = (latents - latents[:, :, :1]).abs().mean(dim=1, keepdim=True)
    return 1 + extra * (change > threshold).float()


def condition_batch(pool: dict, ids: np.ndarray, with_goal: np.ndarray, device: torch.device) -> torch.Tensor:
    """The pipeline's condition for these pool segments: the mask channel (1 on the first frame, and on the
    last where a goal sketch is given) and the normalised condition latents."""
    cond = pool["condition"][ids].float()
    plain = ~torch.from_numpy(with_goal)
    cond[plain, :, -1:] = pool["plain_last"][ids][plain].float()
    mean, std = pool["mean"].view(1, -1, 1, 1, 1), pool["std"].view(1, -1, 1, 1, 1)
    cond = (cond - mean) / std
    mask = torch.zeros(len(ids), 1, *cond.shape[2:])
    mask[:, :, 0] = 1
    mask[~plain, :, -1] = 1
    return torch.cat([mask, cond], dim=1).to(device)


class _Texts:
    """Prompt embeddings from the frozen text encoder, computed once for every wording of the pool (and the
    empty prompt) in a fixed order and batching: a batch's composition moves the embeddings by ~1e-7, enough
    to make a resumed run drift from an uninterrupted one."""

    def __init__(self, pipe: Any, prompts: list[str], device: torch.device, batch: int = 64) -> None:
        wordings = sorted({"", *prompts})
        self.cache: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            for start in range(0, len(wordings), batch):
                chunk = wordings[start:start + batch]
                embeds, _ = pipe.encode_prompt(prompt=chunk, do_classifier_free_guidance=False,
                                               max_sequence_length=MAX_PROMPT_TOKENS, device=device)
                self.cache.update(zip(chunk, embeds))

    def __call__(self, prompts: list[str]) -> torch.Tensor:
        return torch.stack([self.cache[p] for p in prompts])


def goal_mask(count: int, share_without: float, seed: int) -> np.ndarray:
    """Which pool segments are shown their goal (True) and which train the prompt-alone path: a fixed draw,
    so a resumed run sees the same split."""
    return np.random.default_rng(seed + 7).random(count) >= share_without


def train_denoiser(pipe: Any, pool: dict, data: Pool, shown_goal: np.ndarray, train_ids: np.ndarray,
                   val_ids: np.ndarray, config: PretrainConfig, out: Path, metrics: MetricsLog, progress: bool,
                   deadline: Deadline) -> tuple[Any, int]:
    """Stage 2; returns the EMA transformer and the step it stopped at. Batches and noise are drawn on the
    CPU whatever the device, so a GPU run sees the draws a CPU run would."""
    from accelerate import Accelerator

    accelerator = Accelerator(mixed_precision=precision(config))
    device = accelerator.device
    mean, std = pool["mean"].view(1, -1, 1, 1, 1), pool["std"].view(1, -1, 1, 1, 1)
    transformer = pipe.transformer
    ema = copy.deepcopy(transformer).requires_grad_(False).to(device)
    optimizer = torch.optim.AdamW(transformer.parameters(), lr=config.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / config.warmup))
    model, optimizer = accelerator.prepare(transformer, optimizer)
    state_path = out / "state" / "denoiser.pt"
    rng, generator = np.random.default_rng(config.seed + 1), torch.Generator().manual_seed(config.seed + 1)
    modules = {"transformer": transformer, "ema": ema, "optimizer": optimizer, "schedule": schedule,
               "rng": Rng(rng), "noise": Rng(generator)}
    start = resume_state(state_path, modules)
    metrics.forget_after(start, stage=2)
    texts = _Texts(pipe, data.prompts, device)

    def batch(ids: np.ndarray, prompts: list[str], with_goal: np.ndarray) -> tuple[torch.Tensor, ...]:
        latents = ((pool["video"][ids].float() - mean) / std).to(device)
        return latents, condition_batch(pool, ids, with_goal, device), texts(prompts)

    val_noise = torch.Generator().manual_seed(12345)
    val_batch = batch(val_ids, [data.prompts[i] for i in val_ids], np.ones(len(val_ids), dtype=bool))
    val = (*val_batch, _sigmas(len(val_ids), config.shift, val_noise).to(device),
           torch.randn(val_batch[0].shape, generator=val_noise).to(device))
    bar = tqdm(range(start, config.steps), initial=start, total=config.steps, desc="stage 2: denoiser",
               disable=not progress, unit="step")
    running: list[float] = []

    def record(done: int) -> None:
        with torch.no_grad():
            val_loss = flow_loss(ema, *val).item()
        metrics.add({"stage": 2, "step": done, "flow_loss": float(np.mean(running[-50:] or [np.nan])),
                     "val_flow_loss": val_loss})

    def sample(done: int) -> None:
        sample_grid(with_transformer(pipe, ema), data, val_ids[:4], config, out / "samples" / f"step-{done:06d}.png")

    model.train()
    done = start
    ema_params, params = list(ema.parameters()), list(transformer.parameters())
    for step in bar:
        if deadline.passed():
            break
        ids = rng.choice(train_ids, config.batch, replace=False)
        batch_prompts = ["" if rng.random() < config.prompt_dropout else data.prompts[i] for i in ids]
        latents, condition, text = batch(ids, batch_prompts, shown_goal[ids])
        loss = flow_loss(model, latents, condition, text, _sigmas(len(ids), config.shift, generator).to(device),
                         torch.randn(latents.shape, generator=generator).to(device),
                         motion_weight(latents, config.motion_weight, config.motion_threshold))
        check_finite(loss, "stage 2", step, state_path)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(transformer.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():  # warm-up: early on the average follows the weights (it would hold the init)
            torch._foreach_lerp_(ema_params, params, 1 - min(config.ema, (1 + step) / (10 + step)))
        running.append(loss.item())
        done = step + 1
        bar.set_postfix(loss=f"{np.mean(running[-50:]):.4f}")
        last = done == config.steps
        if done % 50 == 0 or done % config.save_every == 0 or last:  # a row for every saved state
            record(done)
        if done % config.save_every == 0 or last:
            save_state(state_path, done, modules)
            metrics.plot()
        if done % config.sample_every == 0 or last:
            sample(done)
    if done < config.steps and deadline.passed():  # stopped early: keep, log and show what there is
        save_state(state_path, done, modules)
        if not metrics.rows or metrics.rows[-1].get("step") != done:
            record(done)
        metrics.plot()
        sample(done)
    model.eval()
    return ema, done


def with_transformer(pipe: Any, transformer: Any) -> Any:
    """The pipeline with another transformer (the EMA weights), sharing every other part."""
    parts = {k: v for k, v in pipe.components.items()}
    parts["transformer"] = transformer
    made = type(pipe)(**parts, expand_timesteps=pipe.config.get("expand_timesteps", False))
    made.set_progress_bar_config(disable=True)
    return made


def sample_grid(pipe: Any, data: Pool, ids: np.ndarray, config: PretrainConfig, path: Path) -> None:
    """Held-out segments: each pair of rows is the ground truth (frames 0, 2, 4, 6, 8) and the model's, made
    from the first frame, the instruction and the segment's goal."""
    from PIL import Image

    rows = []
    for i in ids:
        truth = data.frames[i]
        made = generate(pipe, truth[0], data.prompts[i], config.sample_steps, seed=int(i), goal=data.goals[i])
        pick = np.linspace(0, len(truth) - 1, 5).astype(int)
        rows += [np.concatenate(list(truth[pick]), axis=1), np.concatenate(list(made[pick]), axis=1)]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)


def generate(pipe: Any, image: np.ndarray, prompt: str, steps: int, seed: int = 0,
             goal: list[GoalMove] | None = None) -> np.ndarray:
    """One segment at the native size (uint8 frames), shown `goal` as its sketch when one is given."""
    from PIL import Image

    last = Image.fromarray(goal_sketch(image, goal)) if goal else None
    out = pipe(image=Image.fromarray(image), last_image=last, prompt=prompt, height=NATIVE_SIDE, width=NATIVE_SIDE,
               num_frames=pipeline_frames(pipe, NATIVE_FRAMES), num_inference_steps=steps, guidance_scale=1.0,
               output_type="np", max_sequence_length=MAX_PROMPT_TOKENS, generator=torch.Generator().manual_seed(seed))
    return (np.clip(out.frames[0], 0, 1) * 255).round().astype(np.uint8)
