"""Real text+image-to-video backbones through diffusers: Wan2.1/2.2, CogVideoX, LTX-Video.

Each backbone wraps the diffusers pipeline class users already know, loads it
once per process (the registry caches it per model, dtype, device and memory
options), caches prompt embeddings per prompt (the text encoder dominates
Wan's start-up), seeds a `torch.Generator` from the request, and checks each
model's frame-count and resolution rules before any GPU work.

`tiny-wan` is the same code path on a tiny random-weight Wan2.2-style pipeline
built in code (tools/video/tiny.py) and saved with `save_pretrained`: it runs
on a CPU with no downloads and produces noise.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InputError, SpiralError
from .base import ProgressFn, Segment, SegmentRequest
from .trajectory import TrajectoryRecorder

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _nothing():
    yield


@dataclass(frozen=True)
class BackboneSpec:
    """What a backbone needs: its pipeline class, default weights and the model's rules."""

    pipeline: str
    default_model: str
    frame_multiple: int
    """num_frames must be `frame_multiple * k + 1`."""
    size_multiple: int
    steps: int
    guidance: float
    max_sequence_length: int
    fps: int
    embeds: str
    """How `encode_prompt` returns: `pair` (embeds, negative) or `masked` (LTX: with attention masks)."""
    notes: str


SPECS: dict[str, BackboneSpec] = {
    "wan2.1-i2v": BackboneSpec("WanImageToVideoPipeline", "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers", 4, 16, 40, 5.0,
                               512, 16, "pair", "14B image-to-video (CLIP image encoder); large: use --cpu-offload on <80 GB"),
    "wan2.2-ti2v": BackboneSpec("WanImageToVideoPipeline", "Wan-AI/Wan2.2-TI2V-5B-Diffusers", 4, 32, 50, 5.0,
                                512, 24, "pair", "5B text+image-to-video; 704x1280 native"),
    "cogvideox-i2v": BackboneSpec("CogVideoXImageToVideoPipeline", "THUDM/CogVideoX-5b-I2V", 4, 16, 50, 6.0,
                                  226, 8, "pair", "5B; 480x720, 49 frames native; VAE tiling helps"),
    "ltx-i2v": BackboneSpec("LTXImageToVideoPipeline", "Lightricks/LTX-Video", 8, 32, 50, 3.0, 128, 24, "masked",
                            "2B; fast; 512x768 native"),
    "tiny-wan": BackboneSpec("WanImageToVideoPipeline", "", 4, 16, 2, 1.0, 16, 8, "pair",
                             "random weights built in code; CPU; for tests and wiring checks"),
}


def check_sizes(name: str, num_frames: int, height: int, width: int) -> None:
    """Raise InputError when a request would break the model's frame or size rules."""
    spec = SPECS[name]
    if (num_frames - 1) % spec.frame_multiple:
        k = max(round((num_frames - 1) / spec.frame_multiple), 1)
        raise InputError(f"{name} needs num_frames = {spec.frame_multiple}k+1 (e.g. {spec.frame_multiple * k + 1}); "
                         f"got {num_frames}")
    for side, value in (("height", height), ("width", width)):
        if value % spec.size_multiple:
            raise InputError(f"{name} needs {side} divisible by {spec.size_multiple}; got {value}")


def validate(name: str, *, model: str = "", dtype: str = "auto", device: str = "auto", num_frames: int,
             height: int, width: int) -> None:
    """Every check that needs no weights: run before any work so bad input leaves nothing behind."""
    check_sizes(name, num_frames, height, width)
    resolved = resolve_device(device)
    resolve_dtype(dtype, resolved)
    if name != "tiny-wan" or model:
        _resolve_model(name, model)


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("CUDA was requested but torch sees no CUDA device; use --device cpu, or install the "
                         "CUDA build of torch (bash setup.sh on a machine where nvidia-smi works)")
    return device


def resolve_dtype(dtype: str, device: str):
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
                "float16": torch.float16, "fp16": torch.float16}[dtype]
    except KeyError:
        raise InputError(f"unknown dtype {dtype!r}; choose auto, float32, bfloat16 or float16") from None


def tiny_model_dir() -> Path:
    """Where `tiny-wan` keeps the pipeline it builds (once) and loads like a user's weights."""
    home = Path(os.environ.get("SPIRAL_HOME", Path.cwd() / ".spiral"))
    return home / "models" / "tiny-wan"


def _resolve_model(name: str, model: str) -> str:
    if name == "tiny-wan" and not model:
        path = tiny_model_dir()
        if not (path / "model_index.json").exists():
            from .tiny import save_tiny_wan

            save_tiny_wan(path)
        return str(path)
    model = model or SPECS[name].default_model
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "model_index.json").exists():
            raise InputError(f"{model} has no model_index.json: give a diffusers pipeline folder "
                             "(save_pretrained output) or a hub id")
        return str(path)
    if model.startswith((".", "/", "~")) or model.count("/") != 1:
        raise InputError(f"model weights not found: {model} (give a local diffusers folder or a hub id like "
                         f"{SPECS[name].default_model})")
    return model


class DiffusersBackbone:
    """A diffusers TI2V pipeline used as SPIRAL's video generator."""

    def __init__(self, name: str, model: str = "", dtype: str = "auto", device: str = "auto",
                 cpu_offload: bool = False, vae_tiling: bool = False) -> None:
        import diffusers

        self.name, self.spec = name, SPECS[name]
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        source = _resolve_model(name, model)
        cls = getattr(diffusers, self.spec.pipeline)
        t0 = time.perf_counter()
        try:
            pipe = cls.from_pretrained(source, dtype=self.dtype)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot load {name} from {source}: {str(exc).splitlines()[0][:200]}") from None
        if cpu_offload and self.device == "cpu":
            log.warning("cpu_offload has no effect when the model already runs on the CPU")
            cpu_offload = False
        if cpu_offload:
            pipe.enable_model_cpu_offload(device=self.device)
        else:
            pipe.to(self.device)
        if vae_tiling and hasattr(pipe.vae, "enable_tiling"):
            pipe.vae.enable_tiling()
        pipe.set_progress_bar_config(disable=True)
        self.pipe, self.cpu_offload = pipe, cpu_offload
        self.load_s = time.perf_counter() - t0
        self._embeds: dict[tuple[str, str], tuple] = {}
        log.info("loaded %s from %s in %.1fs on %s (%s)", name, source, self.load_s, self.device, self.dtype)

    def _prompt_kwargs(self, prompt: str, negative: str, guidance: float) -> dict[str, Any]:
        """Prompt embeddings, computed once per (prompt, negative prompt)."""
        key = (prompt, negative)
        if key not in self._embeds:
            import torch

            with torch.no_grad():
                self._embeds[key] = self.pipe.encode_prompt(
                    prompt=prompt, negative_prompt=negative, do_classifier_free_guidance=guidance > 1.0,
                    num_videos_per_prompt=1, max_sequence_length=self.spec.max_sequence_length,
                    device=self.pipe._execution_device)
        out = self._embeds[key]
        if self.spec.embeds == "masked":
            pe, pm, npe, npm = out
            return {"prompt_embeds": pe, "prompt_attention_mask": pm, "negative_prompt_embeds": npe,
                    "negative_prompt_attention_mask": npm}
        pe, npe = out
        return {"prompt_embeds": pe, "negative_prompt_embeds": npe}

    def generate(self, request: SegmentRequest, progress: ProgressFn | None = None) -> Segment:
        import torch

        check_sizes(self.name, request.num_frames, request.height, request.width)
        steps = request.num_inference_steps or self.spec.steps
        guidance = request.guidance_scale if request.guidance_scale is not None else self.spec.guidance
        t0 = time.perf_counter()
        kwargs = self._prompt_kwargs(request.prompt, request.negative_prompt, guidance)
        gen_device = "cpu" if self.cpu_offload else self.device
        generator = torch.Generator(device=gen_device).manual_seed(request.seed)
        recorder = None
        if request.trajectory:
            if not hasattr(self.pipe.scheduler, "index_for_timestep") or not hasattr(self.pipe.scheduler, "sigmas"):
                raise InputError(f"{self.name}'s scheduler ({type(self.pipe.scheduler).__name__}) is not a "
                                 "flow-matching scheduler; trajectory capture needs one")
            sde = torch.Generator(device=gen_device).manual_seed(request.seed + 1)
            recorder = TrajectoryRecorder(self.pipe.scheduler, request.sde_noise_level, sde)
        try:
            with recorder if recorder is not None else _nothing():
                out = self.pipe(image=Image.fromarray(request.conditioning_frame()), height=request.height,
                                width=request.width, num_frames=request.num_frames, num_inference_steps=steps,
                                guidance_scale=guidance, generator=generator, output_type="np",
                                max_sequence_length=self.spec.max_sequence_length,
                                **_progress_callback(progress, steps), **kwargs)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            raise SpiralError(f"{self.name} ran out of GPU memory at {request.width}x{request.height}, "
                              f"{request.num_frames} frames: enable --cpu-offload (and --vae-tiling), or lower "
                              "the resolution or the frame count") from None
        frames = np.clip(np.round(np.asarray(out.frames[0]) * 255.0), 0, 255).astype(np.uint8)
        trajectory = None
        if recorder is not None:
            trajectory = recorder.trajectory
            trajectory.prompt_embeds = kwargs["prompt_embeds"].detach().float().cpu()
        return Segment(frames=frames, fps=self.spec.fps, seed=request.seed, backbone=self.name,
                       timings={"generate_s": time.perf_counter() - t0}, trajectory=trajectory)


def _progress_callback(progress: ProgressFn | None, steps: int) -> dict:
    """diffusers' `callback_on_step_end`, reporting each finished denoising step."""
    if progress is None:
        return {}

    def on_step_end(pipe, i: int, t, callback_kwargs: dict) -> dict:
        progress(i + 1, steps)
        return callback_kwargs

    return {"callback_on_step_end": on_step_end}


def register_all() -> None:
    from .registry import register_backbone

    for name, spec in SPECS.items():
        register_backbone(
            name, lambda _n=name, **kw: DiffusersBackbone(_n, **kw),
            f"{spec.pipeline} ({spec.default_model or 'built in code'}); {spec.notes}",
            needs_gpu=name != "tiny-wan",
            settings=("model", "dtype", "device", "cpu_offload", "vae_tiling"))
