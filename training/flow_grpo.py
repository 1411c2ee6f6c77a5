"""Flow-GRPO on replayed trajectories: a LoRA on the generator's transformer, under accelerate.

For each recorded transition x_t -> x_{t-1} of a sample with advantage A, the
current policy's guided output is recomputed from the stored latents and
conditioning (tools/video/policy.py), the transition is re-scored with
`sde_step_with_logprob`, and the loss is flow_grpo's: the clipped ratio
objective max(-A r, -A clip(r, 1 - e, 1 + e)) with r = exp(log p_new - log p_old),
plus `kl_beta` times the KL to the reference policy (the same transformer with
the adapter disabled), which for two Gaussians with the same std is
|mean - mean_ref|^2 / (2 std^2). A chosen fraction of each trajectory's steps
is trained on. With `ratio_norm` the log-ratio is first centred per denoising step by a
running mean of its detached values (`RatioCentres`), in the spirit of GRPO-Guard: a
fresh policy's log-ratio carries a negative bias, -|mu_new - mu_old|^2 / (2 std^2),
that grows as the step's std shrinks, so late steps drift out of the clip range
first; centring keeps every step's ratio near 1, and the clip range means the same
at every step. (Not the paper's exact normalisation, which needs the rollout
policy's mean at each step; trajectories store only its log-probability.)
Gradients are accumulated over `gradient_accumulation` samples
per process; with several processes (accelerate launch) each takes every n-th
sample and DDP averages, which equals one process accumulating n times as many.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..tools.video.policy import WanConditioning, guided_output
from ..tools.video.trajectory import scored_from, sde_step_with_logprob
from .config import GRPOConfig
from .state import TrainingRun


@dataclass
class ReplaySample:
    """One recorded segment ready to train on."""

    latents: torch.Tensor
    """(S+1, B, C, F, H, W): the initial noise, then every step's result."""
    timesteps: torch.Tensor
    log_probs: torch.Tensor
    """(S, B): the sampling policy's log-probabilities."""
    conditioning: WanConditioning
    noise_level: float
    steps: int
    advantage: float = 0.0

    @classmethod
    def from_trajectory(cls, trajectory: Any, advantage: float = 0.0) -> ReplaySample:
        tensors = trajectory.tensors()
        return cls(tensors["latents"], tensors["timesteps"], tensors["log_probs"], trajectory.conditioning,
                   trajectory.noise_level, int(trajectory.metadata.get("steps", len(trajectory.log_probs))), advantage)

    @classmethod
    def from_artifacts(cls, tensors: dict, metadata: dict, conditioning: WanConditioning,
                       advantage: float = 0.0) -> ReplaySample:
        return cls(tensors["latents"], tensors["timesteps"], tensors["log_probs"], conditioning,
                   float(metadata["noise_level"]), int(metadata["steps"]), advantage)


class RatioCentres:
    """The running mean of the detached log importance ratio at each denoising step, saved with the training
    state so a resumed run centres as an uninterrupted one does."""

    def __init__(self, momentum: float = 0.9) -> None:
        self.momentum = momentum
        self.means: dict[int, float] = {}

    def centre(self, step: int, log_ratio: torch.Tensor) -> float:
        value = float(log_ratio.detach().mean())
        old = self.means.get(step)
        self.means[step] = value if old is None else self.momentum * old + (1 - self.momentum) * value
        return self.means[step]

    def state_dict(self) -> dict[str, dict[str, float]]:
        return {"means": {str(k): v for k, v in self.means.items()}}

    def load_state_dict(self, state: dict[str, dict[str, float]]) -> None:
        self.means = {int(k): float(v) for k, v in state["means"].items()}


class FlowGRPO(TrainingRun):
    """Trains a LoRA on `pipe.transformer` from replay samples; the pipeline samples with it as it learns."""

    method = "grpo"

    def __init__(self, pipe: Any, backbone: str, base_model: str, config: GRPOConfig, output_dir: str | Path,
                 init_adapter: str | Path | None = None) -> None:
        super().__init__(pipe, backbone, base_model, config, output_dir, init_adapter)
        self._schedulers: dict[int, Any] = {}
        self.centres = RatioCentres()
        if config.ratio_norm:
            self.accelerator.register_for_checkpointing(self.centres)

    def _scheduler(self, steps: int) -> Any:
        """The sampling scheduler's sigmas for `steps` steps (as the pipeline set them when sampling)."""
        if steps not in self._schedulers:
            scheduler = copy.deepcopy(self.pipe.scheduler)
            scheduler.set_timesteps(steps, device=self.device)
            self._schedulers[steps] = scheduler
        return self._schedulers[steps]

    def chosen_steps(self, sample: ReplaySample, key: int) -> list[int]:
        """The trained steps of a sample: a seeded choice, the same on every process and every rerun."""
        total = len(sample.log_probs)
        count = max(1, math.ceil(self.config.timestep_fraction * total))
        order = torch.randperm(total, generator=torch.Generator().manual_seed(self.config.seed * 7919 + key))
        return sorted(order[:count].tolist())

    def transition_loss(self, sample: ReplaySample, j: int) -> tuple[torch.Tensor, dict[str, float]]:
        """flow_grpo's loss for step j of a sample, and what it was made of."""
        cfg, model = self.config, self.model
        scheduler = self._scheduler(sample.steps)
        cond = sample.conditioning.to(self.device)
        latents = sample.latents[j].to(self.device, torch.float32)
        prev = sample.latents[j + 1].to(self.device, torch.float32)
        t = sample.timesteps[j].to(self.device)
        first = scored_from(cond.expand_timesteps)  # Wan2.2 TI2V: frame 0 is the image, not the policy's choice
        with self.autocast():
            output = guided_output(model, latents, t, cond)
        step = sde_step_with_logprob(scheduler, output, t, latents, sample.noise_level, prev_sample=prev,
                                     first_frame=first)
        old = sample.log_probs[j].to(self.device)
        log_ratio = step.log_prob - old
        centre = self.centres.centre(j, log_ratio) if cfg.ratio_norm else 0.0
        ratio = torch.exp(log_ratio - centre)
        advantage = torch.full_like(ratio, sample.advantage).clamp(-cfg.adv_clip_max, cfg.adv_clip_max)
        policy = torch.maximum(-advantage * ratio,
                               -advantage * torch.clamp(ratio, 1 - cfg.clip_range, 1 + cfg.clip_range)).mean()
        loss, kl_value = policy, 0.0
        if cfg.kl_beta > 0:
            with torch.no_grad(), self.adapter_disabled(), self.autocast():
                reference = sde_step_with_logprob(scheduler, guided_output(model, latents, t, cond), t, latents,
                                                  sample.noise_level, prev_sample=prev, first_frame=first)
            dims = tuple(range(1, step.prev_sample_mean.ndim))
            gap = (step.prev_sample_mean - reference.prev_sample_mean)[:, :, first:]
            kl = (gap ** 2).mean(dim=dims) / (2 * step.std_dev_t.reshape(-1) ** 2)
            loss = loss + cfg.kl_beta * kl.mean()
            kl_value = float(kl.mean().detach())
        clipped = float(((ratio - 1).abs() > cfg.clip_range).float().mean())
        return loss, {"policy_loss": float(policy.detach()), "kl": kl_value, "ratio": float(ratio.mean().detach()),
                      "clip_fraction": clipped}

    def train(self, samples: list[ReplaySample], skip_steps: int = 0) -> dict[str, float]:
        """`inner_epochs` passes over the samples (this process's share), an optimizer step every
        `gradient_accumulation` samples, the first `skip_steps` optimizer steps skipped (a resumed run);
        returns the mean of each logged quantity over the passes."""
        per_pass = super().steps_per_pass(len(samples))
        results = []
        for epoch in range(self.config.inner_epochs):
            def work(index: int, sample: ReplaySample, epoch: int = epoch):
                chosen = self.chosen_steps(sample, key=epoch * 1_000_003 + index)
                for j in chosen:
                    loss, stats = self.transition_loss(sample, j)
                    self.accelerator.backward(loss / (len(chosen) * self.config.gradient_accumulation))
                    yield stats

            results.append(self.pass_over(samples, work, max(0, skip_steps - epoch * per_pass)))
        return {k: sum(r.get(k, 0.0) for r in results) / len(results) for k in results[-1]}

    def steps_per_pass(self, samples: int) -> int:
        """Optimizer steps one `train` call takes over `samples` samples."""
        return self.config.inner_epochs * super().steps_per_pass(samples)
