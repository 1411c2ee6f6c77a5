"""Training settings: pydantic defaults, plus named recipes that set what differs per machine.

Defaults follow flow_grpo's (clip range 1e-4 is theirs for large models; the
tiny recipe uses a wider one) and its habit of training on a fraction of each
trajectory's timesteps. A recipe is a partial override; `config_for` applies it
and then the user's own overrides, and pydantic refuses unknown names.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .rewards import RewardWeights

STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)
"""Every training setting: unknown names and non-finite numbers are refused at the door."""


class LoraSettings(BaseModel):
    model_config = STRICT

    rank: int = Field(32, ge=1, le=1024)
    alpha: float = Field(32.0, gt=0)
    targets: list[str] = Field(default_factory=lambda: ["to_q", "to_k", "to_v", "to_out.0"])
    """Module names in the transformer's attention blocks (diffusers' Wan attention names)."""


class TrainerSettings(BaseModel):
    """What every trainer takes: the optimizer, the LoRA, precision, checkpoints, rewards."""

    model_config = STRICT

    learning_rate: float = Field(1e-4, ge=0)
    """0 is allowed: the control run a statistical test compares against."""
    weight_decay: float = Field(1e-4, ge=0)
    lora: LoraSettings = Field(default_factory=LoraSettings)
    gradient_accumulation: int = Field(1, ge=1)
    """Samples (or pairs) per optimizer step, per process."""
    max_grad_norm: float = Field(1.0, gt=0)
    gradient_checkpointing: bool = True
    mixed_precision: Literal["no", "bf16"] = "no"
    """bf16 autocast on CUDA (the LoRA's weights and optimizer stay float32); ignored on the CPU."""
    seed: int = 0
    save_every: int = Field(1, ge=1)
    """Optimizer steps between saved training states (accelerate's save_state), for resuming."""
    rewards: RewardWeights = Field(default_factory=RewardWeights)


class GRPOConfig(TrainerSettings):
    """Flow-GRPO on recorded groups: clipped ratio loss on re-scored SDE steps, KL to the base policy."""

    clip_range: float = Field(1e-4, gt=0)
    adv_clip_max: float = Field(5.0, gt=0)
    kl_beta: float = Field(0.04, ge=0)
    """Weight of the KL term to the reference policy (the base model: the adapter disabled); 0 skips it."""
    timestep_fraction: float = Field(1.0, gt=0, le=1)
    """Share of each trajectory's denoising steps trained on (a seeded choice per sample)."""
    inner_epochs: int = Field(1, ge=1)
    ratio_norm: bool = False
    """Centre the log importance ratio per denoising step before clipping (training/flow_grpo.py)."""


class DPOConfig(TrainerSettings):
    """Diffusion-DPO on same-condition pairs (the best and worst sample of a group)."""

    beta: float = Field(500.0, gt=0)
    """Diffusion-DPO's beta (its paper uses thousands for SD; the implicit reward is scaled by it)."""
    pairs: Literal["group", "refinement"] = "group"
    """`group`: the best and worst sample of each group by reward; `refinement`: the loop's own refinements,
    an accepted retry preferred to the rejected try before it from the same frame (training/replay.py)."""


RECIPES: dict[str, dict] = {
    "tiny-cpu": {"learning_rate": 3e-2, "clip_range": 0.2, "kl_beta": 0.0, "gradient_checkpointing": False,
                 "save_every": 10,
                 "lora": {"rank": 4, "alpha": 4.0, "targets": ["to_q", "to_k", "to_v", "to_out.0", "ffn.net.0.proj",
                                                               "ffn.net.2", "proj_out"]}},
    "wan-1gpu": {"learning_rate": 3e-4, "clip_range": 1e-4, "kl_beta": 0.04, "timestep_fraction": 0.6,
                 "lora": {"rank": 32, "alpha": 64.0}, "mixed_precision": "bf16", "gradient_accumulation": 4,
                 "save_every": 10},
}
"""`tiny-cpu`: tiny-wan on a CPU in minutes. `wan-1gpu`: a Wan2.1-I2V-1.3B-class or Wan2.2-TI2V-5B LoRA at
low resolution on one GPU (docs/training.md)."""


def config_for(kind: type[BaseModel], recipe: str = "", **overrides) -> BaseModel:
    """`kind` (GRPOConfig or DPOConfig) from a named recipe, then `overrides`."""
    if recipe and recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; known: {', '.join(RECIPES)}")
    values = {k: v for k, v in (RECIPES.get(recipe, {})).items() if k in kind.model_fields}
    return kind(**{**values, **overrides})


class PretrainConfig(BaseModel):
    """What `spiral train pretrain` does; the defaults are the shipped model's recipe (docs/tabletop-tiny.md)."""

    model_config = STRICT

    examples: int = Field(4000, gt=0, description="Segments in the pool (single sub-actions of train-split tasks).")
    held_out: int = Field(64, ge=4, description="Pool segments kept out of training, for validation loss and samples.")
    vae_steps: int = Field(2400, ge=0, description="Autoencoder optimizer steps.")
    vae_batch: int = Field(8, gt=0, description="Clips per autoencoder step.")
    vae_clip_frames: int = Field(9, ge=9, description="Frames per autoencoder clip: the first alone, then two chunks of "
                                 "4 (the second reads the first's cached features, as every later chunk does).")
    vae_lr: float = Field(1e-3, gt=0, description="Autoencoder learning rate (AdamW).")
    vae_crop: int = Field(48, ge=0, le=128, multiple_of=8, description="Side of the squares the autoencoder trains on, "
                          "centred on objects four times in five (0: whole frames).")
    kl_weight: float = Field(1e-6, ge=0, description="Weight of the autoencoder's KL term.")
    foreground_weight: float = Field(10.0, ge=0, description="Extra weight of object pixels in the autoencoder's L1.")
    edge_weight: float = Field(10.0, ge=0, description="Extra weight of the pixels on either side of an outline in the "
                               "autoencoder's L1.")
    corner_weight: float = Field(30.0, ge=0, description="Extra weight of the pixels where outlines turn a corner "
                                 "(what tells a cube from a ball) in the autoencoder's L1.")
    steps: int = Field(4500, ge=0, description="Denoiser optimizer steps.")
    batch: int = Field(8, gt=0, description="Segments per denoiser step.")
    lr: float = Field(5e-4, gt=0, description="Denoiser learning rate (AdamW, after a linear warm-up).")
    warmup: int = Field(200, ge=1, description="Denoiser warm-up steps.")
    ema: float = Field(0.999, ge=0, lt=1, description="Decay of the weights' moving average (what is saved).")
    prompt_dropout: float = Field(0.1, ge=0, le=1, description="Share of denoiser samples trained with the empty "
                                  "prompt (keeps classifier-free guidance possible).")
    no_goal_share: float = Field(0.15, ge=0, le=1, description="Share of segments trained without their goal "
                                 "sketch (the prompt-alone path a goal-less request takes).")
    motion_weight: float = Field(10.0, ge=0, description="Extra loss weight where the clip changes (0: a uniform "
                                 "loss).")
    motion_threshold: float = Field(0.5, gt=0, description="Mean change of a latent position from the first frame "
                                    "(normalised units) from which it counts as changing.")
    shift: float = Field(3.0, gt=0, description="Flow-matching timestep shift (the scheduler's).")
    width: int = Field(160, ge=32, multiple_of=32, description="Transformer width (heads of 32).")
    layers: int = Field(6, gt=0, description="Transformer blocks.")
    save_every: int = Field(250, gt=0, description="Steps between saved states (a rerun resumes from the newest).")
    sample_every: int = Field(1000, gt=0, description="Steps between sample sheets of held-out segments.")
    sample_steps: int = Field(12, gt=0, description="Denoising steps of the samples.")
    seed: int = Field(0, ge=0, description="Seed of the pool's draws, the weights and the noise.")
    vae_from: str = Field("", description="A trained tabletop-tiny pipeline folder whose autoencoder stage 1 starts "
                          "from (with --vae-steps 0 it is used as it is).")
    mixed_precision: Literal["no", "bf16"] = Field("no", description="bf16 autocast on CUDA; ignored on the CPU.")

    @model_validator(mode="after")
    def _enough_data(self) -> PretrainConfig:
        if self.examples < self.held_out + max(self.batch, self.vae_batch):
            raise ValueError(f"--examples must be at least {self.held_out + max(self.batch, self.vae_batch)} "
                             f"({self.held_out} are held out, and a batch needs {max(self.batch, self.vae_batch)})")
        return self


class FitOptions(BaseModel):
    """`spiral train grpo | dpo` (and each round of `loop`): which trainer settings, for how long, where."""

    model_config = STRICT

    recipe: str = Field("", description="named defaults: tiny-cpu, wan-1gpu (docs/training.md)")
    epochs: int = Field(4, ge=1, le=10_000, description="passes over the samples")
    lr: float | None = Field(None, ge=0, description="learning rate (default: the recipe's; 0 is the control run)")
    init_adapter: str = Field("", description="an adapter to go on training (the one the rollouts were drawn with, "
                              "for GRPO); empty: a fresh one on the base weights", json_schema_extra={"path": True})
    pairs: Literal["group", "refinement"] = Field("group", description="dpo: the best and worst sample of each "
                                                  "group by reward (group), or each accepted retry preferred to "
                                                  "the rejected try before it from the same frame (refinement)")
    timestep_fraction: float | None = Field(None, gt=0, le=1, description="grpo: share of each trajectory's "
                                            "denoising steps trained on (default: the recipe's)")
    ratio_norm: bool = Field(False, description="grpo: centre the log importance ratio per denoising step before "
                             "clipping (GRPO-Guard's idea; training/flow_grpo.py)")
    device: str = Field("auto", description="auto (each process's own GPU under a launcher), cpu, cuda:N")
    dtype: str = Field("auto", description="base weights: auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16")


class LoopOptions(BaseModel):
    """`spiral train loop`: rounds of collect, train and evaluate."""

    model_config = STRICT

    rounds: int = Field(3, ge=1, le=1000, description="collect-train-evaluate rounds")
    size: int = Field(8, ge=1, description="train tasks collected per round")
    eval_size: int = Field(4, ge=1, description="held-out test tasks evaluated per round")
    method: Literal["grpo", "dpo"] = Field("grpo", description="the trainer each round")
    segment_check: int = Field(0, ge=0, le=4096, description="tabletop-tiny: also judge this many held-out single "
                               "segments per policy, by the critic and by the independent judge (never a reward); "
                               "a critic pass rate that rises while the judge's success does not is reported as "
                               "reward hacking")
