"""Real-size backbones on a GPU: SPIRAL's generator tool against the bare pipeline, trajectories, a LoRA step.

    python -m spiral.bench.gpu --out gpu.json      # a CUDA machine; torch, diffusers, transformers, peft

For each backbone (built full size from its published configs with random
weights, `gpu_models.py`): the bare diffusers call and SPIRAL's
`DiffusersBackbone.generate` at the same settings and seed (seconds, seconds
per denoising step, peak VRAM, whether the frames are identical), the same with
trajectory capture (SDE steps and log-probs), and a Flow-GRPO-shaped LoRA step
on the transformer: one stored transition re-scored with classifier-free
guidance, the clipped ratio loss plus a KL term to the adapter-free reference,
backward, AdamW. Work runs in order until `--budget-s` is spent; every result
is written to `--out` as soon as it exists, so a run cut short keeps what it
measured. `--scale tiny --device cpu` runs the same code on tiny configs.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from .gpu_models import build_full_size, parameter_counts

PROMPT = "put the red ball in the bowl and keep every other object still"

PLAN = [
    # (backbone, what, height, width, frames, denoising steps)
    ("wan2.2-ti2v", "generate", 256, 416, 33, 8),
    ("wan2.2-ti2v", "lora_step", 256, 416, 33, 0),
    ("wan2.2-ti2v", "trajectory", 256, 416, 33, 8),
    ("wan2.2-ti2v", "generate", 704, 1280, 121, 4),
    ("wan2.1-i2v", "generate", 480, 832, 81, 2),
]
"""Settings: the one-GPU training recipe's size (multiple of 32 for Wan2.2), then native sizes."""

TINY_PLAN = [("wan2.2-ti2v", "generate", 64, 64, 5, 2), ("wan2.2-ti2v", "lora_step", 64, 64, 5, 0),
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
    out = {"s": clock.now() - t0, "peak_gb": clock.peak_gb(), "frames": segment.frames}
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


def measure_trajectory(pipe: Any, backbone: Any, clock: Clock, h: int, w: int, f: int, steps: int) -> dict:
    """Trajectory capture needs an Euler flow-matching scheduler (Flow-GRPO's SDE step): swapped in here."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    original = pipe.scheduler
    pipe.scheduler = FlowMatchEulerDiscreteScheduler(shift=original.config.get("flow_shift", 5.0))
    try:
        plain = tool_call(backbone, clock, h, w, f, steps, seed=0)
        traced = tool_call(backbone, clock, h, w, f, steps, seed=0, trajectory=True)
    finally:
        pipe.scheduler = original
    return {"plain_s": plain["s"], "trajectory_s": traced["s"], "trajectory_peak_gb": traced["peak_gb"],
            "trajectory_mb": traced["trajectory_mb"]}


def measure_lora_step(pipe: Any, clock: Clock, h: int, w: int, f: int, repeats: int = 5) -> dict:
    """One Flow-GRPO transition step with a LoRA on the attention projections (see module doc)."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler
    from peft import LoraConfig

    from ..tools.video.trajectory import sde_step_with_logprob

    device, dtype = clock.device, pipe.transformer.dtype
    tr = pipe.transformer
    tr.requires_grad_(False)
    tr.add_adapter(LoraConfig(r=32, lora_alpha=32, init_lora_weights="gaussian",
                              target_modules=["to_q", "to_k", "to_v", "to_out.0"]), adapter_name="grpo")
    tr.enable_gradient_checkpointing()
    params = [p for p in tr.parameters() if p.requires_grad]
    for p in params:
        p.data = p.data.float()
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    sched = FlowMatchEulerDiscreteScheduler(shift=5.0)
    sched.set_timesteps(10, device=device)
    t = sched.timesteps[3]
    vae = pipe.vae.config
    shape = (1, tr.config.in_channels, (f - 1) // vae.scale_factor_temporal + 1, h // vae.scale_factor_spatial,
             w // vae.scale_factor_spatial)
    gen = torch.Generator(device=device).manual_seed(0)
    latents, condition = (torch.randn(shape, generator=gen, device=device, dtype=dtype) for _ in range(2))
    mask = torch.ones_like(latents)
    mask[:, :, 0] = 0
    model_in = (1 - mask) * condition + mask * latents
    timestep = (mask[0][0][:, ::2, ::2] * t).flatten().unsqueeze(0)
    text = tr.config.text_dim
    embeds = torch.randn((2, 512, text), generator=gen, device=device, dtype=dtype)
    autocast = torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=device != "cpu")

    def guided() -> torch.Tensor:
        with autocast:
            cond = tr(hidden_states=model_in, timestep=timestep, encoder_hidden_states=embeds[:1], return_dict=False)[0]
            uncond = tr(hidden_states=model_in, timestep=timestep, encoder_hidden_states=embeds[1:],
                        return_dict=False)[0]
        return uncond + 5.0 * (cond - uncond)

    with torch.no_grad():
        first = sde_step_with_logprob(sched, guided(), t, latents, generator=gen)
    times, losses = [], []
    tr.train()
    for _ in range(repeats + 1):
        clock.reset_peak()
        t0 = clock.now()
        step = sde_step_with_logprob(sched, guided(), t, latents, prev_sample=first.prev_sample)
        with torch.no_grad():
            tr.disable_adapters()
            reference = sde_step_with_logprob(sched, guided(), t, latents, prev_sample=first.prev_sample)
            tr.enable_adapters()
        ratio = torch.exp(step.log_prob - first.log_prob)
        advantage = torch.ones_like(ratio)
        policy = torch.maximum(-advantage * ratio, -advantage * torch.clamp(ratio, 0.8, 1.2)).mean()
        kl = ((step.prev_sample_mean - reference.prev_sample_mean) ** 2).mean() / (2 * step.std_dev_t.mean() ** 2)
        loss = policy + 0.04 * kl
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(clock.now() - t0)
        losses.append(float(loss.detach()))
    tr.eval()
    tr.disable_gradient_checkpointing()
    tr.delete_adapters("grpo")
    return {"s_per_step": statistics.median(times[1:]), "peak_gb": clock.peak_gb(),
            "lora_params_m": sum(p.numel() for p in params) / 1e6, "tokens": int(timestep.shape[1]),
            "loss_first_last": [losses[1], losses[-1]]}


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
            elif what == "trajectory":
                row.update(measure_trajectory(pipe, backbone, clock, h, w, f, steps))
            else:
                row.update(measure_lora_step(pipe, clock, h, w, f))
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


def _gb(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f}"


def render(report: dict, command: str) -> str:
    """The docs/benchmarks.md section for one report (`--render`)."""
    built = report["built"]
    lines = [f"### Real-size backbones on one {report['device']} (random weights)", "```bash", command, "```",
             f"torch {report['torch']}, diffusers {report['diffusers']}, bf16 (float32 norms and time embedding, as "
             "`from_pretrained` keeps them), no offload, guidance 5.0, one segment per call. Each pipeline is built "
             "from its published configs with random weights (`bench/gpu_models.py`): real shapes and compute, "
             "noise for frames. Whole run: " f"{report['wall_s']:.0f} s.", "",
             "| backbone | parameters (B) | built in s |", "| --- | --- | --- |"]
    for name, b in built.items():
        parts = ", ".join(f"{k} {v:.2f}" for k, v in b["params_b"].items())
        lines.append(f"| `{name}` | {parts} | {b['s']:.1f} |")
    lines += ["", "Generating one segment: the bare diffusers call (prompt as text) against SPIRAL's generator tool "
              "(`DiffusersBackbone.generate`, prompt embeddings cached after the first call), same seed:", "",
              "| backbone | size | steps | s / step | bare s | tool s (first / cached) | peak VRAM GB (bare / tool) "
              "| max frame diff bare vs tool | bare vs bare again |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in report["results"]:
        if r["what"] != "generate" or "error" in r or "skipped" in r:
            continue
        lines.append(f"| `{r['backbone']}` | {r['width']}x{r['height']}x{r['frames']} | {r['steps']} | "
                     f"{r['bare_s_per_step']:.2f} | {r['bare_s']:.2f} | {r['tool_s']:.2f} / {r['tool_cached_s']:.2f} | "
                     f"{_gb(r['bare_peak_gb'])} / {_gb(r['tool_peak_gb'])} | {r['max_frame_diff']} | "
                     f"{r.get('bare_repeat_diff', '–')} |")
    for r in report["results"]:
        if r["what"] == "trajectory" and "error" not in r and "skipped" not in r:
            lines += ["", f"Trajectory capture (`--trajectory`, Euler SDE steps with log-probs) on `{r['backbone']}` at "
                      f"{r['width']}x{r['height']}x{r['frames']}, {r['steps']} steps: {r['trajectory_s']:.2f} s against "
                      f"{r['plain_s']:.2f} s without, {_gb(r['trajectory_peak_gb'])} GB peak, "
                      f"{r['trajectory_mb']:.1f} MB recorded per segment (float32)."]
        if r["what"] == "lora_step" and "error" not in r and "skipped" not in r:
            lines += ["", f"A Flow-GRPO-shaped LoRA step on `{r['backbone']}`'s transformer at {r['width']}x{r['height']}"
                      f"x{r['frames']} ({r['tokens']} tokens; rank 32 on every attention projection, "
                      f"{r['lora_params_m']:.1f} M trainable parameters, gradient checkpointing, bf16 autocast, "
                      "AdamW): one stored transition re-scored with guidance (2 forwards), the adapter-free "
                      "reference for the KL term (2 forwards, no grad), backward: "
                      f"{r['s_per_step']:.2f} s per transition, {_gb(r['peak_gb'])} GB peak (the text encoder and "
                      "VAE stay resident)."]
    for r in report["results"]:
        if "error" in r or "skipped" in r:
            lines.append(f"\nNot measured: `{r['backbone']}` {r['what']}: {r.get('error') or r.get('skipped')}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="where the measurements go (JSON)")
    parser.add_argument("--render", type=Path, help="a report written by --out: write its section into --doc")
    parser.add_argument("--doc", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--scale", choices=("full", "tiny"), default="full")
    parser.add_argument("--budget-s", type=float, default=420.0)
    args = parser.parse_args(argv)
    if args.render:
        from .report import write_section

        report = json.loads(args.render.read_text())
        command = "python -m spiral.bench.gpu --out gpu.json   # on the GPU machine, then --render gpu.json here"
        write_section(args.doc, "bench:gpu", render(report, command))
        return
    if not args.out:
        parser.error("--out is required to measure")
    run(PLAN if args.scale == "full" else TINY_PLAN, args.device, args.scale, args.budget_s, args.out)


if __name__ == "__main__":
    main()
