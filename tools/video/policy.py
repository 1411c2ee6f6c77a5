"""The policy a trajectory was sampled from, as training recomputes it (Wan pipelines).

Flow-GRPO re-scores a stored transition x_t -> x_{t-1} under the current weights,
so it needs the model's guided output at (x_t, t) with exactly the conditioning
the pipeline used: prompt and negative-prompt embeddings, Wan2.1's CLIP image
embeddings, and the image condition (Wan2.1: channels concatenated after the
latents; Wan2.2 TI2V: the first latent frame, with per-token timesteps).
`ConditioningCapture` reads them from the first denoising step's transformer
calls (a forward pre-hook: what the transformer really received, after the
pipeline's own casts), and `guided_output` redoes the pipeline loop's
arithmetic on them. Other pipelines pack their inputs differently and are not
replayable yet; `REPLAYABLE_PIPELINES` says which are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

REPLAYABLE_PIPELINES = ("WanImageToVideoPipeline",)


@dataclass
class WanConditioning:
    """What stays fixed across one segment's denoising steps (float32 copies of what the transformer saw)."""

    prompt_embeds: torch.Tensor
    negative_embeds: torch.Tensor | None
    image_embeds: torch.Tensor | None
    condition: torch.Tensor
    """Wan2.1: (B, C', F, H, W) concatenated after the latents; Wan2.2 TI2V: (B, C, 1, H, W), the first frame."""
    expand_timesteps: bool
    guidance: float

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {"prompt_embeds": self.prompt_embeds, "condition": self.condition}
        if self.negative_embeds is not None:
            out["negative_embeds"] = self.negative_embeds
        if self.image_embeds is not None:
            out["image_embeds"] = self.image_embeds
        return {k: v.contiguous() for k, v in out.items()}

    def metadata(self) -> dict[str, str]:
        return {"expand_timesteps": str(self.expand_timesteps), "guidance": repr(self.guidance)}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> WanConditioning:
        return cls(prompt_embeds=tensors["prompt_embeds"], negative_embeds=tensors.get("negative_embeds"),
                   image_embeds=tensors.get("image_embeds"), condition=tensors["condition"],
                   expand_timesteps=metadata["expand_timesteps"] == "True", guidance=float(metadata["guidance"]))

    def sample(self, k: int) -> WanConditioning:
        """Sample k's conditioning from a batch's (batch size 1; a tensor shared by the batch stays as is)."""
        pick = (lambda t: None if t is None else t[k:k + 1] if t.shape[0] > 1 else t)
        return WanConditioning(pick(self.prompt_embeds), pick(self.negative_embeds), pick(self.image_embeds),
                               pick(self.condition), self.expand_timesteps, self.guidance)

    def to(self, device: Any) -> WanConditioning:
        move = (lambda t: None if t is None else t.to(device))
        return WanConditioning(move(self.prompt_embeds), move(self.negative_embeds), move(self.image_embeds),
                               move(self.condition), self.expand_timesteps, self.guidance)


class ConditioningCapture:
    """Records the first denoising step's transformer inputs while a Wan pipeline samples."""

    def __init__(self, pipe: Any, guidance: float) -> None:
        if type(pipe).__name__ not in REPLAYABLE_PIPELINES:
            raise ValueError(f"{type(pipe).__name__} is not replayable; replayable: {', '.join(REPLAYABLE_PIPELINES)}")
        self.pipe, self.guidance = pipe, guidance
        self.calls: list[dict[str, Any]] = []
        self._handle = None

    def _hook(self, module, args, kwargs) -> None:
        wanted = 2 if self.guidance > 1.0 else 1  # the conditional call, then the unconditional one
        if len(self.calls) < wanted:
            self.calls.append({k: (v.detach().float().cpu() if torch.is_tensor(v) else v) for k, v in kwargs.items()})

    def __enter__(self) -> ConditioningCapture:
        self._handle = self.pipe.transformer.register_forward_pre_hook(self._hook, with_kwargs=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()

    def conditioning(self) -> WanConditioning:
        cond = self.calls[0]
        expand = bool(self.pipe.config.get("expand_timesteps", False))
        hidden = cond["hidden_states"]
        channels = self.pipe.transformer.config.out_channels
        condition = hidden[:, :, :1].clone() if expand else hidden[:, channels:].clone()
        negative = self.calls[1]["encoder_hidden_states"] if len(self.calls) > 1 else None
        return WanConditioning(prompt_embeds=cond["encoder_hidden_states"], negative_embeds=negative,
                               image_embeds=cond.get("encoder_hidden_states_image"), condition=condition,
                               expand_timesteps=expand, guidance=self.guidance)


def model_input(latents: torch.Tensor, timestep: torch.Tensor, cond: WanConditioning, dtype: torch.dtype,
                patch: tuple[int, int] = (2, 2)) -> tuple[torch.Tensor, torch.Tensor]:
    """The transformer's hidden states and timestep for latents x_t, as the pipeline's loop forms them."""
    batch = latents.shape[0]
    condition = cond.condition.to(latents.device)
    if cond.expand_timesteps:  # the first latent frame is the image, denoised at timestep 0
        hidden = torch.cat([condition.expand(batch, -1, -1, -1, -1), latents[:, :, 1:]], dim=2)
        mask = torch.ones(latents.shape[2:], device=latents.device)
        mask[0] = 0
        per_token = (mask[:, ::patch[0], ::patch[1]] * timestep.reshape(())).flatten()
        return hidden.to(dtype), per_token.unsqueeze(0).expand(batch, -1)
    hidden = torch.cat([latents, condition.expand(batch, -1, -1, -1, -1)], dim=1)
    return hidden.to(dtype), timestep.reshape(()).expand(batch)


def guided_output(transformer: Any, latents: torch.Tensor, timestep: torch.Tensor, cond: WanConditioning) -> torch.Tensor:
    """The classifier-free-guided model output at (x_t, t): the pipeline's arithmetic, in its dtypes."""
    inner = getattr(transformer, "module", transformer)  # a DDP wrapper is called, its module describes
    dtype = inner.dtype
    patch = tuple(inner.config.patch_size[1:])
    hidden, t = model_input(latents, timestep, cond, dtype, patch)
    device = hidden.device
    image = None if cond.image_embeds is None else cond.image_embeds.to(device, dtype)

    guided = cond.guidance > 1.0 and cond.negative_embeds is not None
    embeds = torch.cat([cond.prompt_embeds, cond.negative_embeds]) if guided else cond.prompt_embeds
    copies = 2 if guided else 1  # one forward for both halves: DDP allows one forward per backward
    batch = hidden.shape[0]
    if image is not None:
        image = image.repeat(copies * batch // image.shape[0], 1, 1)
    output = transformer(hidden_states=hidden.repeat(copies, 1, 1, 1, 1),
                         timestep=t.to(device).repeat(copies, *([1] * (t.ndim - 1))),
                         encoder_hidden_states=embeds.to(device, dtype).repeat_interleave(batch, dim=0),
                         encoder_hidden_states_image=image, return_dict=False)[0]
    if not guided:
        return output
    conditional, unconditional = output.chunk(2)
    return unconditional + cond.guidance * (conditional - unconditional)
