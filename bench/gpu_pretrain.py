"""The larger tabletop-tiny variant, pre-trained on one GPU within a wall-clock budget.

    python -m spiral.bench.gpu_pretrain --out DIR --max-minutes 7    # a CUDA machine; torch, diffusers, accelerate
    python -m spiral.bench.gpu_pretrain --out DIR --steps 7020       # the measured variant's length, no budget

The same `training.pretrain.pretrain` as `spiral train pretrain` (this module
exists because a GPU box may lack the CLI's graph dependencies), with the
variant's recipe (`GPU_VARIANT`): the shipped model's autoencoder as it is, a
denoiser of 8 blocks of width 256 (7x the shipped one's parameters), batch 32,
bf16 autocast, as many steps as the budget allows. Writes DIR/pipeline, the
metrics, curves and samples, and DIR/result.json: steps done, wall time, peak
GPU memory and one segment's sampling time on the device.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

GPU_VARIANT = {"examples": 4000, "held_out": 64, "vae_steps": 0, "steps": 40000, "batch": 32, "width": 256,
               "layers": 8, "save_every": 1000, "sample_every": 2000, "mixed_precision": "bf16"}
"""`steps` is a ceiling: the budget decides how many run (the model card says)."""


def main(out: Path, max_minutes: float | None, seed: int, steps: int | None = None) -> dict:
    import torch

    from ..tools.video.tabletop import shipped_weights
    from ..training.config import PretrainConfig
    from ..training.pretrain import pretrain
    from ..training.pretrain_common import Metrics
    from ..training.pretrain_denoiser import generate
    from .segments import train_segments

    config = PretrainConfig(**(GPU_VARIANT | ({"steps": steps} if steps else {})), vae_from=str(shipped_weights()),
                            seed=seed)
    started = time.perf_counter()
    folder = pretrain(train_segments(config.examples, seed=config.seed), out, config, progress=False,
                      max_minutes=max_minutes)
    wall = time.perf_counter() - started
    last = Metrics(out).rows[-1]
    from diffusers import WanImageToVideoPipeline

    device = "cuda" if torch.cuda.is_available() else "cpu"
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    pipe = WanImageToVideoPipeline.from_pretrained(folder).to(device)
    pipe.set_progress_bar_config(disable=True)
    frames = np.load(out / "data" / "frames.npy", mmap_mode="r")
    prompts = json.loads((out / "data" / "prompts.json").read_text())
    times = []
    for i in range(6):
        sync()
        t = time.perf_counter()
        generate(pipe, np.asarray(frames[-1 - i, 0]), prompts[-1 - i], config.sample_steps, seed=i)
        sync()
        times.append(time.perf_counter() - t)
    result = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "torch": torch.__version__, "config": config.model_dump(),
              "max_minutes": max_minutes, "wall_s": round(wall, 1), "steps_done": int(last["step"]),
              "last_metrics": last, "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None,
              "sample_s_median": round(statistics.median(times[1:]), 3),
              "transformer_params_m": round(sum(p.numel() for p in pipe.transformer.parameters()) / 1e6, 2)}
    (out / "result.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget (default: none)")
    parser.add_argument("--steps", type=int, default=None, help=f"denoiser steps (default: {GPU_VARIANT['steps']}, a "
                        "ceiling for --max-minutes; the measured variant ran 7020)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(main(args.out, args.max_minutes, args.seed, args.steps), indent=2))
