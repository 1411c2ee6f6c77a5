"""Diffusion-DPO for flow-matching video models, on same-condition pairs (best vs worst of a group).

For a pair with the same conditioning frame and instruction, the preferred
sample's final latents x_w and the other's x_l are noised with one shared noise
e at one shared level sigma (x_s = (1 - sigma) x + sigma e, the flow-matching
path), and the model's velocity error against the target e - x is compared with
the reference policy's (the adapter disabled). The loss is
-log sigmoid(-beta/2 * ((err_w - ref_w) - (err_l - ref_l))), Diffusion-DPO's
objective with velocity in place of noise prediction; its argument, the
implicit reward margin, grows as the adapter prefers x_w. The prediction is the
conditional one (guidance 1), as in the original. Wan2.2's first latent frame
is the image and is left out of the errors.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..tools.video.policy import WanConditioning, guided_output
from .config import DPOConfig
from .state import TrainingRun


@dataclass
class PreferencePair:
    preferred: torch.Tensor
    """Final latents of the preferred sample (B, C, F, H, W)."""
    other: torch.Tensor
    conditioning: WanConditioning
    margin: float = 0.0
    """How much better the preferred one scored (for weighting or filtering; logged)."""

    @classmethod
    def from_trajectories(cls, preferred: Any, other: Any, margin: float = 0.0) -> PreferencePair:
        return cls(preferred.latents[-1].float(), other.latents[-1].float(), preferred.conditioning, margin)


class DiffusionDPO(TrainingRun):
    method = "dpo"
    config: DPOConfig

    def _errors(self, pair: PreferencePair, sigma: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Velocity errors of the current model on (preferred, other): shape (2,)."""
        cond = dataclasses.replace(pair.conditioning.to(self.device), guidance=1.0)
        latents = torch.cat([pair.preferred, pair.other]).to(self.device)
        noisy = (1 - sigma) * latents + sigma * noise
        target = noise - latents
        timestep = (sigma * 1000).reshape(())
        with self.autocast():
            velocity = guided_output(self.model, noisy, timestep, cond)  # both in one forward, as DDP needs
        first = 1 if cond.expand_timesteps else 0
        return ((velocity.float() - target)[:, :, first:] ** 2).mean(dim=(1, 2, 3, 4))

    def pair_loss(self, pair: PreferencePair, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        sigma = torch.rand((), generator=generator).clamp(0.02, 0.98).to(self.device)
        noise = torch.randn(pair.preferred.shape, generator=generator).to(self.device).expand(2, *pair.preferred.shape[1:])
        errors = self._errors(pair, sigma, noise)
        with torch.no_grad(), self.adapter_disabled():
            reference = self._errors(pair, sigma, noise)
        inside = -0.5 * self.config.beta * ((errors[0] - reference[0]) - (errors[1] - reference[1]))
        loss = -F.logsigmoid(inside)
        return loss, {"loss": float(loss.detach()), "implicit_margin": float(inside.detach()),
                      "accuracy": float(inside.detach() > 0)}

    def train(self, pairs: list[PreferencePair], round_index: int = 0, skip_steps: int = 0) -> dict[str, float]:
        """One pass over the pairs (this process's share), an optimizer step every `gradient_accumulation`,
        the first `skip_steps` optimizer steps skipped (a resumed run)."""
        def work(index: int, pair: PreferencePair):
            generator = torch.Generator().manual_seed(self.config.seed * 7919 + round_index * 1_000_003 + index)
            loss, stats = self.pair_loss(pair, generator)
            self.accelerator.backward(loss / self.config.gradient_accumulation)
            yield stats

        return self.pass_over(pairs, work, skip_steps)

    @torch.no_grad()
    def margin(self, pairs: list[PreferencePair], seed: int = 12345) -> float:
        """Mean implicit reward margin over pairs at fixed noise: what DPO raises."""
        total = 0.0
        for index, pair in enumerate(pairs):
            generator = torch.Generator().manual_seed(seed + index)
            _, stats = self.pair_loss(pair, generator)
            total += stats["implicit_margin"]
        return total / max(len(pairs), 1)
