"""Real text+image-to-video backbones through diffusers: Wan2.1/2.2, CogVideoX, LTX-Video.

Each backbone wraps the diffusers pipeline class users already know, loads it
once per process (the registry caches it per model, dtype, device and memory
options), caches prompt embeddings per prompt (the text encoder dominates
Wan's start-up; the cache is bounded), seeds a `torch.Generator` from the
request, and checks each model's frame-count and resolution rules before any
GPU work. One pipeline serves one call at a time: a lock serialises callers
that share it (threads of a server process), since a pipeline's scheduler and
callbacks are per-call state.

The backbones' rules live in `diffusers_specs.py`, which imports no torch, so a
base install can list and validate them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InputError, SpiralError
from .base import ProgressFn, Segment, SegmentRequest
from .diffusers_specs import (
    SPECS,
    check_sizes,
    resolve_device,
    resolve_dtype,
    resolve_model,
)
from .trajectory import TrajectoryRecorder, scored_from

log = logging.getLogger(__name__)
EMBEDDING_CACHE_SIZE = 64
"""Prompt embeddings kept per pipeline (least recently used dropped first)."""


class DiffusersBackbone:
    """A diffusers TI2V pipeline used as SPIRAL's video generator."""

    def __init__(self, name: str, model: str = "", dtype: str = "auto", device: str = "auto",
                 cpu_offload: bool = False, vae_tiling: bool = False, lora: str = "") -> None:
        import diffusers

        device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, device)
        source = resolve_model(name, model)
        cls = getattr(diffusers, SPECS[name].pipeline)
        t0 = time.perf_counter()
        try:
            pipe = cls.from_pretrained(source, dtype=torch_dtype)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot load {name} from {source}: {str(exc).splitlines()[0][:200]}") from None
        self._adopt(name, pipe, device, torch_dtype, cpu_offload, vae_tiling)
        self.source = source
        if lora:
            self.use_adapter(lora)
        self.load_s = time.perf_counter() - t0
        log.info("loaded %s from %s in %.1fs on %s (%s)", name, source, self.load_s, self.device, self.dtype)

    @classmethod
    def from_pipeline(cls, name: str, pipe: Any, device: str = "auto", cpu_offload: bool = False,
                      vae_tiling: bool = False) -> DiffusersBackbone:
        """Wrap a pipeline object already built (quantized, with adapters, or from configs in code).

        `pipe` must be an instance of the backbone's pipeline class; its dtype is kept as built.
        """
        import diffusers

        expected = getattr(diffusers, SPECS[name].pipeline)
        if not isinstance(pipe, expected):
            raise InputError(f"{name} needs a {expected.__name__}; got {type(pipe).__name__}")
        self = cls.__new__(cls)
        self._adopt(name, pipe, resolve_device(device), pipe.transformer.dtype, cpu_offload, vae_tiling)
        self.source, self.load_s = f"<{type(pipe).__name__} built in code>", 0.0
        return self

    def _adopt(self, name: str, pipe: Any, device: str, dtype: Any, cpu_offload: bool, vae_tiling: bool) -> None:
        """Place the pipeline and apply the memory options (refusing those that cannot apply, with a reason)."""
        self.name, self.spec, self.device, self.dtype = name, SPECS[name], device, dtype
        self.refused: dict[str, str] = {}
        """Memory options asked for but not applied, with the reason (also logged as a warning)."""
        if cpu_offload and self.device == "cpu":
            self.refused["cpu_offload"] = "the model already runs on the CPU"
            cpu_offload = False
        if cpu_offload:
            pipe.enable_model_cpu_offload(device=self.device)
        else:
            pipe.to(self.device)
        if vae_tiling and not hasattr(pipe.vae, "enable_tiling"):
            self.refused["vae_tiling"] = f"{type(pipe.vae).__name__} has no tiled decode"
        elif vae_tiling:
            pipe.vae.enable_tiling()
        for option, reason in self.refused.items():
            log.warning("%s: %s has no effect: %s", name, option, reason)
        pipe.set_progress_bar_config(disable=True)
        self.pipe, self.cpu_offload = pipe, cpu_offload
        self._embeds: OrderedDict[tuple[str, str], tuple] = OrderedDict()
        self._lock = threading.Lock()
        self.adapter = ""
        """The LoRA adapter loaded on the transformer, as `path@sha256-prefix` (empty: the base weights)."""

    def _prompt_kwargs(self, prompt: str, negative: str, guidance: float) -> dict[str, Any]:
        """Prompt embeddings, computed once per (prompt, negative prompt)."""
        key = (prompt, negative)
        if key in self._embeds:
            self._embeds.move_to_end(key)
        else:
            import torch

            with torch.no_grad():
                self._embeds[key] = self.pipe.encode_prompt(
                    prompt=prompt, negative_prompt=negative, do_classifier_free_guidance=guidance > 1.0,
                    num_videos_per_prompt=1, max_sequence_length=self.spec.max_sequence_length,
                    device=self.pipe._execution_device)
            while len(self._embeds) > EMBEDDING_CACHE_SIZE:
                self._embeds.popitem(last=False)
        out = self._embeds[key]
        if self.spec.embeds == "masked":
            pe, pm, npe, npm = out
            return {"prompt_embeds": pe, "prompt_attention_mask": pm, "negative_prompt_embeds": npe,
                    "negative_prompt_attention_mask": npm}
        pe, npe = out
        return {"prompt_embeds": pe, "negative_prompt_embeds": npe}

    def use_adapter(self, directory: str) -> None:
        """Sample with a LoRA trained by `spiral train` (checked against this backbone first)."""
        from .adapters import check_adapter, load_adapter

        check_adapter(directory, self.name)
        self.adapter = load_adapter(self.pipe, directory)
        log.info("%s: sampling with adapter %s", self.name, self.adapter)

    def _trajectory_tools(self, request: SegmentRequest, guidance: float, gen_device: str):
        """The SDE recorder and the conditioning capture, or one clear error when this pipeline cannot replay."""
        import torch

        from .policy import REPLAYABLE_PIPELINES, ConditioningCapture

        if type(self.pipe).__name__ not in REPLAYABLE_PIPELINES or getattr(self.pipe, "transformer_2", None):
            replayable = ", ".join(n for n, s in SPECS.items() if s.pipeline in REPLAYABLE_PIPELINES)
            raise InputError(f"{self.name} cannot record trajectories for training: SPIRAL recomputes the policy of "
                             f"{replayable} only")
        if not hasattr(self.pipe.scheduler, "index_for_timestep") or not hasattr(self.pipe.scheduler, "sigmas"):
            raise InputError(f"{self.name}'s scheduler ({type(self.pipe.scheduler).__name__}) is not a "
                             "flow-matching scheduler; trajectory capture needs one")
        sde = torch.Generator(device=gen_device).manual_seed(request.seed + 1)
        recorder = TrajectoryRecorder(self.pipe.scheduler, request.sde_noise_level, sde, request.trajectory_dtype,
                                      first_frame=scored_from(bool(self.pipe.config.get("expand_timesteps", False))))
        return recorder, ConditioningCapture(self.pipe, guidance)

    def _goal_kwargs(self, request: SegmentRequest) -> dict[str, Any]:
        """`last_image`: the goal's sketch, for a backbone trained on them and a request that has a goal."""
        if not (self.spec.takes_goal and request.goal):
            return {}
        from .goal_sketch import goal_sketch

        image = request.image if request.image.shape[:2] == (request.height, request.width) else None
        if image is None:
            raise InputError(f"{self.name} takes a goal only at the conditioning image's own size "
                             f"({request.image.shape[1]}x{request.image.shape[0]}); got {request.width}x{request.height}")
        return {"last_image": Image.fromarray(goal_sketch(image, request.goal))}

    def policy_metadata(self, request: SegmentRequest, steps: int, guidance: float) -> dict[str, str]:
        """Who sampled (weights, dtype, adapter) and how (settings): what a trainer checks before replaying."""
        scheduler = self.pipe.scheduler.config
        return {"backbone": self.name, "model": self.source, "dtype": str(self.dtype).removeprefix("torch."),
                "adapter": self.adapter, "steps": str(steps), "guidance": repr(guidance),
                "shift": repr(scheduler.get("shift", scheduler.get("flow_shift", ""))),
                "scheduler": type(self.pipe.scheduler).__name__, "height": str(request.height),
                "width": str(request.width), "frames": str(request.num_frames), "seed": str(request.seed),
                "noise_level": repr(request.sde_noise_level)}

    def generate(self, request: SegmentRequest, progress: ProgressFn | None = None) -> Segment:
        """One segment; callers sharing this pipeline wait their turn."""
        with self._lock:
            return self._generate(request, progress, [request.seed])[0]

    def generate_group(self, request: SegmentRequest, seeds: list[int],
                       progress: ProgressFn | None = None) -> list[Segment]:
        """`len(seeds)` samples of one request in one batched pipeline call (a GRPO group). Each sample
        starts from its own seed's noise, as it would alone; with trajectories the SDE noise of the steps
        is drawn for the batch (from the first seed), so a sample differs from the one made alone."""
        with self._lock:
            return self._generate(request, progress, list(seeds))

    def _generate(self, request: SegmentRequest, progress: ProgressFn | None, seeds: list[int]) -> list[Segment]:
        import torch

        check_sizes(self.name, request.num_frames, request.height, request.width)
        steps = request.num_inference_steps or self.spec.steps
        guidance = request.guidance_scale if request.guidance_scale is not None else self.spec.guidance
        t0 = time.perf_counter()
        kwargs = self._prompt_kwargs(request.prompt, request.negative_prompt, guidance)
        if len(seeds) > 1:  # the cached embeddings are for one sample: one copy per sample of the batch
            kwargs = {k: v if v is None else v.repeat(len(seeds), *([1] * (v.ndim - 1))) for k, v in kwargs.items()}
        gen_device = "cpu" if self.cpu_offload else self.device
        generator = torch.Generator(device=gen_device).manual_seed(seeds[0]) if len(seeds) == 1 else \
            [torch.Generator(device=gen_device).manual_seed(seed) for seed in seeds]
        recorder, capture = None, None
        if request.trajectory:
            recorder, capture = self._trajectory_tools(request.model_copy(update={"seed": seeds[0]}), guidance,
                                                       gen_device)
        try:
            with recorder or contextlib.nullcontext(), capture or contextlib.nullcontext():
                out = self.pipe(image=Image.fromarray(request.conditioning_frame()), **self._goal_kwargs(request),
                                height=request.height,
                                width=request.width, num_frames=pipeline_frames(self.pipe, request.num_frames),
                                num_inference_steps=steps,
                                guidance_scale=guidance, generator=generator, output_type="pt",
                                max_sequence_length=self.spec.max_sequence_length,
                                **_progress_callback(progress, steps), **kwargs)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            raise SpiralError(f"{self.name} ran out of GPU memory at {request.width}x{request.height}, "
                              f"{request.num_frames} frames, {len(seeds)} at once: enable --cpu-offload (and "
                              "--vae-tiling), or lower the resolution, the frame count or the group size") from None
        each_s = (time.perf_counter() - t0) / len(seeds)
        segments = []
        for k, seed in enumerate(seeds):
            trajectory = None
            if recorder is not None:
                trajectory = recorder.trajectory.sample(k, capture.conditioning())
                trajectory.metadata = self.policy_metadata(request.model_copy(update={"seed": seed}), steps, guidance)
            segments.append(Segment(frames=_uint8_frames(out.frames[k]), fps=self.spec.fps, seed=seed,
                                    backbone=self.name, timings={"generate_s": each_s}, trajectory=trajectory))
        return segments


def _uint8_frames(video) -> np.ndarray:
    """(F, C, H, W) floats in [0, 1] on the pipeline's device to (F, H, W, 3) uint8 on the host.

    Scaled and rounded where the frames are (the GPU): done on the host with numpy it cost
    1.1-1.4 s per 121-frame 704x1280 segment on an H200 machine (docs/benchmarks.md). float32
    first, as diffusers' numpy output does, so the values are those of `output_type="np"`.
    """
    import torch

    scaled = (video.float() * 255.0).round().clamp(0, 255).to("cpu", dtype=torch.uint8)
    return scaled.permute(0, 2, 3, 1).contiguous().numpy()


def _progress_callback(progress: ProgressFn | None, steps: int) -> dict:
    """diffusers' `callback_on_step_end`, reporting each finished denoising step."""
    if progress is None:
        return {}

    def on_step_end(pipe, i: int, t, callback_kwargs: dict) -> dict:
        progress(i + 1, steps)
        return callback_kwargs

    return {"callback_on_step_end": on_step_end}


class _NoFrameRounding(logging.Filter):
    """Drops diffusers' "Rounding to the nearest number" warning for a VAE with temporal factor 1, where
    `pipeline_frames` already asked for the count that rounds to the one wanted."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "has to be divisible by 1." not in record.getMessage()


logging.getLogger("diffusers.pipelines.wan.pipeline_wan_i2v").addFilter(_NoFrameRounding())


def pipeline_frames(pipe: Any, num_frames: int) -> int:
    """What to ask `pipe` for to get `num_frames` frames. Diffusers' Wan pipelines round any count that is
    not 1 + a multiple of the VAE's temporal factor up to one that is, and with a factor of 1 (a VAE that
    does not compress time, as tabletop-tiny's) they add a frame to every request: ask for one fewer."""
    factor = getattr(pipe, "vae_scale_factor_temporal", None)
    return num_frames - 1 if factor == 1 and num_frames > 1 else num_frames
