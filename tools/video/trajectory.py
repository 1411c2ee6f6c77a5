"""Per-step trajectories for RL: SDE sampling with Gaussian log-probabilities (Flow-GRPO style).

A flow-matching sampler is deterministic (an ODE), so it has no policy
log-probability. Flow-GRPO turns each Euler step into an SDE step with the same
marginals: the next latent is Gaussian around a drift-corrected mean with std
`std_dev_t * sqrt(-dt)`, where `std_dev_t = noise_level * sqrt(sigma / (1 - sigma))`.
`sde_step_with_logprob` samples that step and returns its log-probability; given
a stored `prev_sample` it re-scores a recorded transition instead (what replaying
traces for GRPO needs). Everything is computed in float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class StepResult:
    prev_sample: torch.Tensor
    log_prob: torch.Tensor
    """Mean over all non-batch dimensions, shape (batch,)."""
    prev_sample_mean: torch.Tensor
    std_dev_t: torch.Tensor


def _sigmas(scheduler, timestep: torch.Tensor, sample: torch.Tensor):
    t = timestep.reshape(-1) if torch.is_tensor(timestep) else torch.tensor([timestep])
    idx = [scheduler.index_for_timestep(ti.to(scheduler.timesteps.device)) for ti in t]
    sigmas = scheduler.sigmas.to(torch.float32)
    shape = (-1,) + (1,) * (sample.ndim - 1)
    sigma = sigmas[idx].reshape(shape).to(sample.device)
    sigma_prev = sigmas[[i + 1 for i in idx]].reshape(shape).to(sample.device)
    sigma_max = sigmas[1].item()
    return sigma, sigma_prev, sigma_max


def sde_std(sigma: torch.Tensor, sigma_max: float, noise_level: float) -> torch.Tensor:
    """Flow-GRPO's `noise_level * sqrt(sigma / (1 - sigma))`, with sigma in the denominator bounded by the
    schedule's second sigma: it diverges as sigma nears 1, and schedulers start at 1 (flow-matching Euler: the
    reference implementation's `sigma == 1` case) or a hair below it (UniPC, as Wan's published pipelines
    ship it, starts at 0.999999: std 695, and the latents grew to std 21,721 in three steps)."""
    return torch.sqrt(sigma / (1 - torch.clamp(sigma, max=sigma_max))) * noise_level


def sde_step_with_logprob(scheduler, model_output: torch.Tensor, timestep: torch.Tensor, sample: torch.Tensor,
                          noise_level: float = 0.7, prev_sample: torch.Tensor | None = None,
                          generator: torch.Generator | None = None, first_frame: int = 0) -> StepResult:
    """One SDE step of a flow-matching scheduler and its log-probability (fp32).

    With `prev_sample` given, nothing is sampled: the recorded transition is re-scored. The log-probability
    is the mean over latent frames from `first_frame` on: a pipeline that overwrites latent frame 0 with the
    conditioning image (Wan2.2 TI2V, `expand_timesteps`) makes that frame's transitions carry no choice of
    the policy's, so they are left out (`first_frame=1`, see `scored_from`).
    """
    model_output = model_output.float()
    sample = sample.float()
    sigma, sigma_prev, sigma_max = _sigmas(scheduler, timestep, sample)
    dt = sigma_prev - sigma
    std_dev_t = sde_std(sigma, sigma_max, noise_level)
    mean = (sample * (1 + std_dev_t**2 / (2 * sigma) * dt)
            + model_output * (1 + std_dev_t**2 * (1 - sigma) / (2 * sigma)) * dt)
    scale = std_dev_t * torch.sqrt(-dt)
    if prev_sample is None:
        noise = torch.randn(sample.shape, generator=generator, device=sample.device if generator is None
                            else generator.device, dtype=torch.float32).to(sample.device)
        prev_sample = mean + scale * noise
    prev_sample = prev_sample.float()
    log_prob = (-((prev_sample.detach() - mean) ** 2) / (2 * scale**2) - torch.log(scale)
                - math.log(math.sqrt(2 * math.pi)))
    if first_frame:
        log_prob = log_prob[:, :, first_frame:]
    return StepResult(prev_sample, log_prob.mean(dim=tuple(range(1, log_prob.ndim))), mean, std_dev_t)


def scored_from(expand_timesteps: bool) -> int:
    """The first latent frame a policy's log-probability counts: 1 where the pipeline overwrites frame 0 with
    the image (Wan2.2 TI2V), else 0."""
    return 1 if expand_timesteps else 0


@dataclass
class Trajectory:
    """What one sampled segment's denoising did, step by step (CPU).

    `latents` holds S+1 states (the initial noise, then each step's result): transition i goes from
    latents[i] to latents[i+1] at timesteps[i] with log-probability log_probs[i]. Model outputs are
    not kept: training recomputes them from the latents and `conditioning` (tools/video/policy.py).
    """

    latents: list[torch.Tensor] = field(default_factory=list)
    timesteps: list[torch.Tensor] = field(default_factory=list)
    sigmas: list[torch.Tensor] = field(default_factory=list)
    log_probs: list[torch.Tensor] = field(default_factory=list)
    conditioning: Any = None
    """A `policy.WanConditioning`: what the transformer saw besides the latents and the timestep."""
    noise_level: float = 0.7
    metadata: dict[str, str] = field(default_factory=dict)
    """The policy's identity and the sampling settings (backbone, model, dtype, adapter, steps, guidance,
    shift, sizes, seed): what a trainer checks before replaying."""

    def sample(self, k: int, conditioning: Any) -> Trajectory:
        """Sample k of a batched trajectory (batch size 1), with its slice of the batch's conditioning."""
        return Trajectory(latents=[t[k:k + 1] for t in self.latents], timesteps=list(self.timesteps),
                          sigmas=list(self.sigmas), log_probs=[t[k:k + 1] for t in self.log_probs],
                          conditioning=conditioning.sample(k), noise_level=self.noise_level, metadata=dict(self.metadata))

    def tensors(self) -> dict[str, torch.Tensor]:
        """Stacked tensors for safetensors: latents (S+1, ...), the rest (S, ...)."""
        return {name: torch.stack(getattr(self, name)).contiguous()
                for name in ("latents", "timesteps", "sigmas", "log_probs")}


STORAGE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class TrajectoryRecorder:
    """Stands in for `scheduler.step` during one pipeline call: samples SDE steps and records them.

    With `storage="bfloat16"` each sampled latent is rounded to bf16 before it is recorded, scored
    and used as the next step's input, so the stored trajectory re-scores exactly at half the bytes.
    """

    def __init__(self, scheduler, noise_level: float, generator: torch.Generator, storage: str = "float32",
                 first_frame: int = 0) -> None:
        self.scheduler, self.noise_level, self.generator = scheduler, noise_level, generator
        self.first_frame = first_frame
        self.storage = STORAGE_DTYPES[storage]
        self.trajectory = Trajectory(noise_level=noise_level)

    def _keep(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.detach().to("cpu", self.storage)

    def step(self, model_output: torch.Tensor, timestep: Any, sample: torch.Tensor, *args, return_dict: bool = True,
             **kwargs):
        sched = self.scheduler
        if sched.step_index is None:
            sched._init_step_index(timestep)
        t = timestep if torch.is_tensor(timestep) else torch.tensor(timestep)
        traj = self.trajectory
        if not traj.latents:
            traj.latents.append(self._keep(sample))
        start = traj.latents[-1].to(sample.device, torch.float32)
        drawn = sde_step_with_logprob(sched, model_output, t, start, self.noise_level, generator=self.generator)
        stored = self._keep(drawn.prev_sample)
        result = sde_step_with_logprob(sched, model_output, t, start, self.noise_level,
                                       prev_sample=stored.to(sample.device, torch.float32), first_frame=self.first_frame)
        traj.latents.append(stored)
        traj.timesteps.append(t.detach().float().reshape(-1)[:1].cpu())
        traj.sigmas.append(sched.sigmas[sched.step_index].detach().float().reshape(1).cpu())
        traj.log_probs.append(result.log_prob.detach().float().cpu())
        sched._step_index += 1
        prev = result.prev_sample.to(model_output.dtype)
        if not return_dict:
            return (prev,)
        from diffusers.schedulers.scheduling_utils import SchedulerOutput

        return SchedulerOutput(prev_sample=prev)

    def __enter__(self) -> TrajectoryRecorder:
        self.scheduler.step = self.step  # instance attribute shadows the class method for this call
        return self

    def __exit__(self, *exc) -> None:
        del self.scheduler.step
