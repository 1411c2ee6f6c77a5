"""The pre-training pool of `tabletop-tiny`: segments on disk, then their latents.

The pool is made once per run folder (`data/frames.npy`, a uint8 memmap,
`data/prompts.json` and `data/goals.json`, each segment's hindsight goal) from
any iterable of examples, so a resumed run trains on the same data. Once the
autoencoder is trained, every segment is encoded once (`data/latents.pt`): the
segment itself, and the condition the pipeline builds for it (the first frame,
empty frames, and the goal sketch as the last frame; plus the last frame's
latent when no goal is given): the denoiser never runs the VAE.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch
from tqdm import tqdm

from ..tools.video.base import GoalMove
from ..tools.video.goal_sketch import goal_sketch


class Example(Protocol):
    frames: np.ndarray
    prompt: str
    goal: list[GoalMove]


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save under a temporary name, then rename: a kill never leaves a partial file under `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class Pool(NamedTuple):
    frames: np.ndarray
    """uint8 (N, T, H, W, 3), a read-only memmap."""
    prompts: list[str]
    goals: list[list[GoalMove]]


def make_pool(examples: Iterable[Example], count: int, folder: Path, progress: bool = True) -> Pool:
    """The pool's frames, prompts and goals; made from `examples` when the folder has none."""
    folder.mkdir(parents=True, exist_ok=True)
    frames_path, prompts_path, goals_path = folder / "frames.npy", folder / "prompts.json", folder / "goals.json"
    if not prompts_path.exists():
        prompts: list[str] = []
        goals: list[list[dict]] = []
        partial = folder / ".frames.partial.npy"
        pool = None
        for i, ex in enumerate(tqdm(examples, total=count, desc="pool: render segments", disable=not progress,
                                    unit="seg")):
            if pool is None:
                pool = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=(count, *ex.frames.shape))
            pool[i] = ex.frames
            prompts.append(ex.prompt)
            goals.append([move.model_dump() for move in ex.goal])
        if pool is None or len(prompts) != count:
            raise ValueError(f"the example source gave {len(prompts)} segments; {count} were asked for")
        pool.flush()
        del pool
        os.replace(partial, frames_path)
        tmp = folder / ".goals.partial.json"
        tmp.write_text(json.dumps(goals))
        os.replace(tmp, goals_path)
        tmp = folder / ".prompts.partial.json"
        tmp.write_text(json.dumps(prompts))
        os.replace(tmp, prompts_path)  # written last: its presence means the pool is complete
    goals_read = [[GoalMove(**move) for move in moves] for moves in json.loads(goals_path.read_text())]
    return Pool(np.load(frames_path, mmap_mode="r"), json.loads(prompts_path.read_text()), goals_read)


def to_unit(frames: np.ndarray) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) -> float (B, 3, T, H, W) in [-1, 1], as the Wan VAE takes video."""
    x = torch.from_numpy(np.array(frames, dtype=np.uint8)).float()  # a copy: the pool is a read-only memmap
    x = x.div_(127.5).sub_(1.0)
    return x.permute(0, 4, 1, 2, 3).contiguous()


@torch.no_grad()
def encode_pool(vae: Any, pool: Pool, folder: Path, shown_goal: np.ndarray, batch: int = 8,
                progress: bool = True) -> dict:
    """Latents (the VAE's posterior mode, float16) of every segment, and of the condition the pipeline encodes
    for it: the first frame, empty frames, and its goal sketch last (`condition`); `plain_last` is the
    condition's last latent frame when there is no goal (an empty frame: a causal VAE's earlier frames do not
    change), encoded only for the segments not `shown_goal` (zeros for the others, never read). Per-channel
    mean and std over the segments' latents normalise both. Cached in `latents.pt`."""
    path = folder / "latents.pt"
    if path.exists():
        return torch.load(path)
    videos, conditions, plain = [], [], []
    device = next(vae.parameters()).device
    frames = pool.frames
    for start in tqdm(range(0, len(frames), batch), desc="pool: encode latents", disable=not progress, unit="batch"):
        x = to_unit(frames[start:start + batch]).to(device)
        videos.append(vae.encode(x).latent_dist.mode().half().cpu())
        sketches = np.stack([goal_sketch(frames[i, 0], pool.goals[i]) for i in range(start, start + len(x))])
        empty = torch.zeros_like(x[:, :, 1:-1])
        with_goal = torch.cat([x[:, :, :1], empty, to_unit(sketches[:, None]).to(device)], dim=2)
        without = torch.cat([x[:, :, :1], empty, torch.zeros_like(x[:, :, :1])], dim=2)
        conditions.append(vae.encode(with_goal).latent_dist.mode().half().cpu())
        last = torch.zeros_like(conditions[-1][:, :, -1:])
        hidden = torch.from_numpy(~shown_goal[start:start + len(x)])
        if hidden.any():
            last[hidden] = vae.encode(without[hidden.to(device)]).latent_dist.mode()[:, :, -1:].half().cpu()
        plain.append(last)
    video = torch.cat(videos)
    flat = video.transpose(0, 1).reshape(video.shape[1], -1).float()
    out = {"video": video, "condition": torch.cat(conditions), "plain_last": torch.cat(plain),
           "mean": flat.mean(1), "std": flat.std(1)}
    atomic_save(out, path)
    return out
