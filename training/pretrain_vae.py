"""Stage 1 of `tabletop-tiny` pre-training: the autoencoder on 9-frame clips.

The first frame is encoded alone, then chunks of four, each reading the previous
chunk's cached features (as every later chunk of a longer video does; trained on
one chunk only, later chunks decode to garbage). The loss is L1 with object pixels
weighted up (objects are a few per cent of a frame; with a plain L1 the table
outweighs them and colours come back wrong) and the pixels on either side of an
outline weighted up again (perception reads sizes and shapes from outlines), plus
a small KL term.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

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
from .pretrain_data import to_unit


def train_vae(pipe: Any, frames: np.ndarray, train_ids: np.ndarray, config: PretrainConfig, out: Path,
              metrics: MetricsLog, progress: bool, deadline: Deadline) -> int:
    """Stage 1; returns the step it stopped at (`config.vae_steps` unless the deadline came first)."""
    from accelerate import Accelerator

    accelerator = Accelerator(mixed_precision=precision(config))
    vae = pipe.vae
    optimizer = torch.optim.AdamW(vae.parameters(), lr=config.vae_lr, weight_decay=0.0)
    model, optimizer = accelerator.prepare(vae, optimizer)
    state_path = out / "state" / "vae.pt"
    rng, noise = np.random.default_rng(config.seed), torch.Generator().manual_seed(config.seed)
    modules = {"vae": vae, "optimizer": optimizer, "rng": Rng(rng), "noise": Rng(noise)}
    start = resume_state(state_path, modules)
    metrics.forget_after(start, stage=1)
    span = config.vae_clip_frames
    background = _background(frames, train_ids).to(accelerator.device)[None]
    bar = tqdm(range(start, config.vae_steps), initial=start, total=config.vae_steps, desc="stage 1: autoencoder",
               disable=not progress, unit="step")
    model.train()
    done = start
    for step in bar:
        if deadline.passed():
            break
        ids = np.sort(rng.choice(train_ids, config.vae_batch, replace=False))
        offset = int(rng.integers(0, frames.shape[1] - span + 1))
        x = to_unit(frames[ids, offset:offset + span]).to(accelerator.device)
        bg = background.expand(len(ids), -1, -1, -1)
        if config.vae_crop:
            x, bg = _object_crops(x, bg, config.vae_crop, rng)
        posterior = model.encode(x).latent_dist
        recon = model.decode(posterior.sample(generator=noise)).sample
        error = (recon - x).abs()
        l1 = error.mean()
        edges, corners = _outline(x)
        weight = 1 + config.foreground_weight * _foreground(x, bg) + config.edge_weight * edges \
            + config.corner_weight * corners
        loss = (weight * error).mean() / weight.mean() + config.kl_weight * posterior.kl().mean()
        check_finite(loss, "stage 1", step, state_path)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        done = step + 1
        bar.set_postfix(l1=f"{l1.item():.4f}")
        if done % 25 == 0 or done == config.vae_steps:
            metrics.add({"stage": 1, "step": done, "vae_l1": l1.item()})
        if done % config.save_every == 0 or done == config.vae_steps:
            save_state(state_path, done, modules)
            metrics.plot()
    if done < config.vae_steps and deadline.passed():
        save_state(state_path, done, modules)
    model.eval()
    return done


def _background(frames: np.ndarray, ids: np.ndarray, count: int = 256) -> torch.Tensor:
    """The per-pixel median of first frames, in [-1, 1] (3, H, W): where objects are not, most of the time."""
    pick = ids[np.linspace(0, len(ids) - 1, min(count, len(ids))).astype(int)]
    median = np.median(np.asarray(frames[pick, 0], dtype=np.float32), axis=0)
    return torch.from_numpy(median / 127.5 - 1.0).permute(2, 0, 1).contiguous()


def _foreground(x: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """1 where a pixel of (B, 3, T, H, W) differs from its clip's background (B, 3, H, W) by more than 10 levels
    (objects and their shadows: a few per cent of the frame, which a plain L1 would let the table outweigh)."""
    return ((x - background[:, :, None]).abs().amax(dim=1, keepdim=True) > 10 / 127.5).float()


CROP_GRID = 8
"""Crops start on multiples of this many pixels (the VAE's largest spatial factor), so a crop's latent cells
are the whole frame's cells: what it learns on crops is what it does on frames."""


def _object_crops(x: torch.Tensor, background: torch.Tensor, side: int,
                  rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A `side`-pixel square of each clip (and of its background), centred near one of its objects' pixels
    in the first frame (a uniform place one time in five): the autoencoder's compute goes where the objects,
    their outlines and their corners are, not to the table that fills most of a frame."""
    height, width = x.shape[-2:]
    crops, grounds = [], []
    for clip, ground in zip(x, background, strict=True):
        objects = np.argwhere((clip[:, 0] - ground).abs().amax(dim=0).cpu().numpy() > 10 / 127.5)
        if len(objects) and rng.random() < 0.8:
            row, col = objects[int(rng.integers(len(objects)))]
        else:
            row, col = int(rng.integers(height)), int(rng.integers(width))
        top = int(np.clip(round((row - side / 2) / CROP_GRID) * CROP_GRID, 0, height - side))
        left = int(np.clip(round((col - side / 2) / CROP_GRID) * CROP_GRID, 0, width - side))
        crops.append(clip[..., top:top + side, left:left + side])
        grounds.append(ground[..., top:top + side, left:left + side])
    return torch.stack(crops), torch.stack(grounds)


def _outline(x: torch.Tensor, levels: float = 24.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(edges, corners) of (B, 3, T, H, W), as 0/1 masks (B, 1, T, H, W). Edges: both sides of a step of more
    than `levels` between neighbouring pixels, an object's outline, whose place is what perception reads its
    size from (a blurred outline reads one size smaller). Corners: where a vertical and a horizontal step
    meet within a pixel, whose sharpness tells a cube from a ball (a rounded corner makes a cube a ball)."""
    step = levels / 127.5
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().amax(dim=1, keepdim=True) > step
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().amax(dim=1, keepdim=True) > step
    rows = torch.zeros_like(x[:, :1], dtype=torch.bool)  # a step between this pixel and the one above or below
    rows[..., 1:, :] |= dy
    rows[..., :-1, :] |= dy
    cols = torch.zeros_like(rows)
    cols[..., :, 1:] |= dx
    cols[..., :, :-1] |= dx
    edges = rows | cols

    def near(mask: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.max_pool3d(mask.float(), (1, 3, 3), 1, (0, 1, 1)) > 0

    return edges.float(), (edges & near(rows) & near(cols)).float()
