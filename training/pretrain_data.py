"""The pre-training pool of `tabletop-tiny`: segments on disk, then their latents.

The pool is made once per run folder (`data/frames.npy`, a uint8 memmap, and
`data/prompts.json`) from any iterable of examples, so a resumed run trains
on the same data. Once the autoencoder is trained, every segment is encoded
once (`data/latents.pt`): the denoiser never runs the VAE.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm import tqdm


class Example(Protocol):
    frames: np.ndarray
    prompt: str


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save under a temporary name, then rename: a kill never leaves a partial file under `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def make_pool(examples: Iterable[Example], count: int, folder: Path, progress: bool = True) -> tuple[np.ndarray, list[str]]:
    """The pool's frames (memmap, read-only) and prompts; made from `examples` when the folder has none."""
    folder.mkdir(parents=True, exist_ok=True)
    frames_path, prompts_path = folder / "frames.npy", folder / "prompts.json"
    if not prompts_path.exists():
        prompts: list[str] = []
        partial = folder / ".frames.partial.npy"
        pool = None
        for i, ex in enumerate(tqdm(examples, total=count, desc="pool: render segments", disable=not progress,
                                    unit="seg")):
            if pool is None:
                pool = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=(count, *ex.frames.shape))
            pool[i] = ex.frames
            prompts.append(ex.prompt)
        if pool is None or len(prompts) != count:
            raise ValueError(f"the example source gave {len(prompts)} segments; {count} were asked for")
        pool.flush()
        del pool
        os.replace(partial, frames_path)
        tmp = folder / ".prompts.partial.json"
        tmp.write_text(json.dumps(prompts))
        os.replace(tmp, prompts_path)  # written last: its presence means the pool is complete
    return np.load(frames_path, mmap_mode="r"), json.loads(prompts_path.read_text())


def to_unit(frames: np.ndarray) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) -> float (B, 3, T, H, W) in [-1, 1], as the Wan VAE takes video."""
    x = torch.from_numpy(np.array(frames, dtype=np.uint8)).float()  # a copy: the pool is a read-only memmap
    x = x.div_(127.5).sub_(1.0)
    return x.permute(0, 4, 1, 2, 3).contiguous()


@torch.no_grad()
def encode_pool(vae: Any, frames: np.ndarray, folder: Path, batch: int = 8, progress: bool = True) -> dict:
    """Latents (the VAE's posterior mode) of every segment and of its first frame alone (the pipeline's
    condition), with per-channel mean and std over the pool; cached in `latents.pt`."""
    path = folder / "latents.pt"
    if path.exists():
        return torch.load(path)
    videos, firsts = [], []
    device = next(vae.parameters()).device
    for start in tqdm(range(0, len(frames), batch), desc="pool: encode latents", disable=not progress, unit="batch"):
        x = to_unit(frames[start:start + batch]).to(device)
        videos.append(vae.encode(x).latent_dist.mode().float().cpu())
        firsts.append(vae.encode(x[:, :, :1]).latent_dist.mode().float().cpu())
    video = torch.cat(videos)
    flat = video.transpose(0, 1).reshape(video.shape[1], -1)
    out = {"video": video, "first": torch.cat(firsts), "mean": flat.mean(1), "std": flat.std(1)}
    atomic_save(out, path)
    return out
