"""Real-size backbones on a GPU: SPIRAL's generator tool against the bare pipeline, groups, trajectories, GRPO.

    python -m spiral.bench.gpu --out gpu.json      # a CUDA machine; torch, diffusers, transformers, peft

For each backbone (built full size from its published configs with random
weights, `gpu_models.py`): the bare diffusers call and SPIRAL's
`DiffusersBackbone.generate` at the same settings and seed (seconds, seconds
per denoising step, peak VRAM, whether the frames are identical); a group
sampled one by one against one batched call; trajectory capture (SDE steps and
log-probs); and one optimizer step of the one-GPU GRPO recipe through the
trainer itself (`FlowGRPO.train`). Work runs in order until `--budget-s` is
spent; every result is written to `--out` as soon as it exists, so a run cut
short keeps what it measured. `--scale tiny --device cpu` runs the same code on
tiny configs; `--render` writes the section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from .gpu_models import build_full_size, parameter_counts
from .gpu_report import merge, render

PROMPT = "put the red ball in the bowl and keep every other object still"

PLAN = [
    # (backbone, what, height, width, frames, denoising steps)
    ("wan2.2-ti2v", "generate", 256, 416, 33, 8),
    ("wan2.2-ti2v", "grpo_step", 256, 416, 33, 10),
    ("wan2.2-ti2v", "group", 256, 416, 33, 10),
    ("wan2.2-ti2v", "trajectory", 256, 416, 33, 8),
    ("wan2.2-ti2v", "generate", 704, 1280, 121, 4),
    ("wan2.1-i2v", "generate", 480, 832, 81, 2),
]
"""Settings: the one-GPU training recipe's size (multiple of 32 for Wan2.2), then native sizes."""

TINY_PLAN = [("wan2.2-ti2v", "generate", 64, 64, 5, 2), ("wan2.2-ti2v", "grpo_step", 64, 64, 5, 3),
             ("wan2.2-ti2v", "group", 64, 64, 5, 2),
             ("wan2.2-ti2v", "trajectory", 64, 64, 5, 2), ("wan2.1-i2v", "generate", 32, 32, 5, 2)]


class Clock:
    """Wall time of GPU work: synchronises before reading the clock."""

    def __init__(self, device: str) -> None:
        self.device = device

    def now(self) -> float:
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter()

    def reset_peak(self) -> None:
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()

    def peak_gb(self) -> float | None:
        import torch

        return torch.cuda.max_memory_allocated() / 2**30 if self.device.startswith("cuda") else None


def start_image(height: int, width: int) -> np.ndarray:
    """A smooth coloured test card (any RGB image does: the weights are random)."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x / width, y / height, 0.5 + 0.5 * np.sin(x / 17.0)], axis=-1)
    return (rgb * 255).astype(np.uint8)


def bare_call(pipe: Any, clock: Clock, h: int, w: int, f: int, steps: int, seed: int) -> dict[str, Any]:
    """The diffusers pipeline as a user calls it, prompt as text; per-step times from its callback."""
    import torch
    from PIL import Image

    marks: list[float] = []

    def on_step_end(_pipe, _i, _t, kwargs):
        marks.append(clock.now())
        return kwargs

    clock.reset_peak()
    t0 = clock.now()
    out = pipe(image=Image.fromarray(start_image(h, w)), prompt=PROMPT, negative_prompt="", height=h, width=w,
               num_frames=f, num_inference_steps=steps, guidance_scale=5.0, output_type="np",
               generator=torch.Generator(device=clock.device).manual_seed(seed), max_sequence_length=512,
               callback_on_step_end=on_step_end)
    total = clock.now() - t0
    frames = np.clip(np.round(np.asarray(out.frames[0]) * 255.0), 0, 255).astype(np.uint8)
    steps_s = [b - a for a, b in zip(marks, marks[1:])]
    return {"s": total, "s_per_step": statistics.median(steps_s) if steps_s else None,
            "peak_gb": clock.peak_gb(), "frames": frames}


def tool_call(backbone: Any, clock: Clock, h: int, w: int, f: int, steps: int, seed: int,
              trajectory: bool = False) -> dict[str, Any]:
    """SPIRAL's generator tool, as the generate node calls it."""
    from ..tools.video.base import SegmentRequest

    request = SegmentRequest(image=start_image(h, w), prompt=PROMPT, num_frames=f, height=h, width=w,
                             num_inference_steps=steps, guidance_scale=5.0, seed=seed, trajectory=trajectory)
    clock.reset_peak()
    t0 = clock.now()
    segment = backbone.generate(request)
    out = {"s": clock.now() - t0, "peak_gb": clock.peak_gb(), "frames": segment.frames, "trajectory": segment.trajectory}
    if segment.trajectory is not None:
        tensors = segment.trajectory.tensors()
        out["trajectory_mb"] = sum(t.numel() * t.element_size() for t in tensors.values()) / 2**20
    return out


def measure_generate(pipe: Any, backbone: Any, clock: Clock, h: int, w: int, f: int, steps: int,
                     repeat_bare: bool = False) -> dict:
    bare_call(pipe, clock, h, w, f, 1, seed=7)  # warm-up: kernel selection, allocator
    bare = bare_call(pipe, clock, h, w, f, steps, seed=0)
    first = tool_call(backbone, clock, h, w, f, steps, seed=0)
    cached = tool_call(backbone, clock, h, w, f, steps, seed=0)
    diff = int(np.abs(bare["frames"].astype(int) - first["frames"].astype(int)).max())
    extra = {}
    if repeat_bare:  # is the bare pipeline itself repeatable? (the yardstick for max_frame_diff)
        again = bare_call(pipe, clock, h, w, f, steps, seed=0)
        extra["bare_repeat_diff"] = int(np.abs(bare["frames"].astype(int) - again["frames"].astype(int)).max())
        extra["tool_repeat_diff"] = int(np.abs(first["frames"].astype(int) - cached["frames"].astype(int)).max())
    return extra | {"bare_s": bare["s"], "bare_s_per_step": bare["s_per_step"], "bare_peak_gb": bare["peak_gb"],
            "tool_s": first["s"], "tool_cached_s": cached["s"], "tool_peak_gb": first["peak_gb"],
            "max_frame_diff": diff, "frames_shape": list(bare["frames"].shape)}


@contextlib.contextmanager
def euler_scheduler(pipe: Any):
    """Trajectory capture needs an Euler flow-matching scheduler (Flow-GRPO's SDE step); the published Wan
    configs ship UniPC. Swapped in for the block, with the published shift."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    original = pipe.scheduler
    pipe.scheduler = FlowMatchEulerDiscreteScheduler(shift=original.config.get("flow_shift", 5.0))
    try:
        yield
    finally:
        pipe.scheduler = original


def measure_trajectory(pipe: Any, backbone: Any, clock: Clock, h: int, w: int, f: int, steps: int) -> dict:
    with euler_scheduler(pipe):
        plain = tool_call(backbone, clock, h, w, f, steps, seed=0)
        traced = tool_call(backbone, clock, h, w, f, steps, seed=0, trajectory=True)
    return {"plain_s": plain["s"], "trajectory_s": traced["s"], "trajectory_peak_gb": traced["peak_gb"],
            "trajectory_mb": traced["trajectory_mb"]}


def measure_grpo_step(pipe: Any, backbone: Any, clock: Clock, h: int, w: int, f: int, steps: int,
                      group: int = 4) -> dict:
    """The one-GPU recipe (`wan-1gpu`) for real: a group sampled through the tool with trajectories, then
    `FlowGRPO.train` on it (LoRA, bf16 autocast, gradient checkpointing, guidance as sampled, KL to the base
    policy, a fraction of the steps): one optimizer step over the group, timed twice (the second warm)."""
    import tempfile

    from ..training.config import GRPOConfig, config_for
    from ..training.flow_grpo import FlowGRPO, ReplaySample
    from ..training.rewards import brightness, group_advantages

    with euler_scheduler(pipe):
        t0 = clock.now()
        segments = [tool_call(backbone, clock, h, w, f, steps, seed=k, trajectory=True) for k in range(group)]
        sample_s = (clock.now() - t0) / group
        advantages = group_advantages([[brightness(s["frames"][-1]) for s in segments]]).values[0]
        samples = [ReplaySample.from_trajectory(s["trajectory"], a) for s, a in zip(segments, advantages, strict=True)]
        config = config_for(GRPOConfig, "wan-1gpu", gradient_accumulation=group, save_every=10**6)
        trainer = FlowGRPO(pipe, backbone.name, backbone.source, config, tempfile.mkdtemp())
        try:
            times, peaks, metrics = [], [], {}
            for _ in range(2):
                clock.reset_peak()
                t0 = clock.now()
                metrics = trainer.train(samples)
                times.append(clock.now() - t0)
                peaks.append(clock.peak_gb())
            transitions = sum(len(trainer.chosen_steps(s, key=i)) for i, s in enumerate(samples))
            return {"group": group, "sample_s": sample_s, "optimizer_step_s": times[-1], "first_step_s": times[0],
                    "transitions": transitions, "s_per_transition": times[-1] / transitions, "peak_gb": peaks[-1],
                    "lora_params_m": sum(p.numel() for p in trainer.params) / 1e6, "ratio": metrics.get("ratio"),
                    "kl": metrics.get("kl"), "tokens": ((f - 1) // 4 + 1) * (h // 32) * (w // 32)}
        finally:
            trainer.close()  # the adapter off the pipeline, for the measurements after this one


def measure_group(backbone: Any, clock: Clock, h: int, w: int, f: int, steps: int, group: int = 4) -> dict:
    """A GRPO group with trajectories: one sample after another against one batched call (`generate_group`)."""
    from ..tools.video.base import SegmentRequest

    request = SegmentRequest(image=start_image(h, w), prompt=PROMPT, num_frames=f, height=h, width=w,
                             num_inference_steps=steps, guidance_scale=5.0, trajectory=True)
    with euler_scheduler(backbone.pipe):
        backbone.generate_group(request, [100, 101])  # warm-up at batch size > 1
        clock.reset_peak()
        t0 = clock.now()
        for k in range(group):
            backbone.generate(request.model_copy(update={"seed": k}))
        alone = (clock.now() - t0) / group
        alone_peak = clock.peak_gb()
        clock.reset_peak()
        t0 = clock.now()
        backbone.generate_group(request, list(range(group)))
        batched = (clock.now() - t0) / group
    return {"group": group, "alone_s": alone, "batched_s": batched, "alone_peak_gb": alone_peak,
            "batched_peak_gb": clock.peak_gb()}


def run(plan: list, device: str, scale: str, budget_s: float, out: Path) -> dict:
    import diffusers
    import torch

    from ..tools.video.diffusers_backbone import DiffusersBackbone

    clock = Clock(device)
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if device.startswith("cuda") else platform.processor() or "cpu",
        "torch": torch.__version__, "diffusers": diffusers.__version__, "scale": scale, "results": []}
    started, current, pipe, backbone = time.perf_counter(), None, None, None
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    for name, what, h, w, f, steps in plan:
        if time.perf_counter() - started > budget_s:
            report["results"].append({"backbone": name, "what": what, "skipped": "time budget spent"})
            continue
        if name != current:
            pipe = backbone = None
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
            t0 = clock.now()
            pipe = build_full_size(name, device, dtype, scale)
            backbone = DiffusersBackbone.from_pipeline(name, pipe, device=device)
            report.setdefault("built", {})[name] = {"s": clock.now() - t0, "params_b": parameter_counts(pipe)}
            current = name
        row: dict[str, Any] = {"backbone": name, "what": what, "height": h, "width": w, "frames": f, "steps": steps}
        try:
            if what == "generate":
                row.update(measure_generate(pipe, backbone, clock, h, w, f, steps, repeat_bare=h * w * f < 2**22))
            elif what == "group":
                row.update(measure_group(backbone, clock, h, w, f, steps))
            elif what == "trajectory":
                row.update(measure_trajectory(pipe, backbone, clock, h, w, f, steps))
            else:
                row.update(measure_grpo_step(pipe, backbone, clock, h, w, f, steps))
        except torch.cuda.OutOfMemoryError as exc:
            row["error"] = f"out of memory: {str(exc).splitlines()[0][:160]}"
            torch.cuda.empty_cache()
        except Exception as exc:  # noqa: BLE001  (a measurement run keeps going and records why one failed)
            row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        report["results"].append(row)
        out.write_text(json.dumps(report, indent=1))
        print(json.dumps(row), flush=True)
    report["wall_s"] = time.perf_counter() - started
    out.write_text(json.dumps(report, indent=1))
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="where the measurements go (JSON)")
    parser.add_argument("--render", type=Path, nargs="+", help="reports written by --out (runs on the same kind of "
                        "card): write their section into --doc")
    parser.add_argument("--doc", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--scale", choices=("full", "tiny"), default="full")
    parser.add_argument("--budget-s", type=float, default=420.0)
    parser.add_argument("--only", default="", help="comma-separated measurements to run (generate, grpo_step, "
                        "group, trajectory); default: all")
    args = parser.parse_args(argv)
    if args.render:
        from .report import write_section

        report = merge([json.loads(path.read_text()) for path in args.render])
        command = ("python -m spiral.bench.gpu --out FILE [--only ...]   # on the GPU machine, once per run\n"
                   f"python -m spiral.bench.gpu --render {' '.join(str(p) for p in args.render)}")
        write_section(args.doc, "bench:gpu", render(report, command))
        return
    if not args.out:
        parser.error("--out is required to measure")
    plan = PLAN if args.scale == "full" else TINY_PLAN
    only = {w.strip() for w in args.only.split(",") if w.strip()}
    run([row for row in plan if not only or row[1] in only], args.device, args.scale, args.budget_s, args.out)


if __name__ == "__main__":
    main()
