"""Pre-train `tabletop-tiny` from the world's error-free segments: the autoencoder, then the denoiser.

Stage 1 trains the Wan VAE on 9-frame clips (the first frame alone, then two
chunks of four: the second reads the first's cached features, as every later
chunk of a longer video does; trained on one chunk only, later chunks decode
to garbage) with an L1 loss that weights object pixels up and a small KL term. Stage 2 encodes the pool once and trains the transformer
by flow matching exactly as the pipeline samples: the first latent frame is
the clean condition with timestep 0, the others are noised at a shifted
sigma, the target is the velocity (noise - clean), the loss is taken on the
frames the model must make. Prompts are dropped 10 % of the time (classifier-
free guidance stays possible). An EMA of the transformer is what is saved.

Everything is resumable: each stage saves its state atomically every
`save_every` steps and a rerun of the same command goes on from the newest
one. Per run folder: `metrics.csv`, `curves.png`, `samples/step-N.png`
(held-out segments: ground truth above, the model below) and, at the end,
`pipeline/` (save_pretrained, loadable with `--model`).
"""

from __future__ import annotations

import copy
import csv
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..tools.video.diffusers_backbone import pipeline_frames
from ..tools.video.tabletop import MAX_PROMPT_TOKENS, NATIVE_FRAMES, NATIVE_SIDE, tabletop_tiny_pipeline
from .config import PretrainConfig
from .pretrain_data import Example, atomic_save, encode_pool, make_pool, to_unit

log = logging.getLogger(__name__)


class Metrics:
    """Rows to metrics.csv and a plot of them to curves.png."""

    def __init__(self, folder: Path) -> None:
        self.path, self.plot_path = folder / "metrics.csv", folder / "curves.png"
        self.rows: list[dict[str, float]] = []
        if self.path.exists():
            with self.path.open() as fh:
                self.rows = [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(fh)]

    def forget_after(self, stage: int, step: int) -> None:
        """Drop the rows a killed run logged after the state it resumes from (they are logged again)."""
        self.rows = [r for r in self.rows if r.get("stage") != stage or r["step"] <= step]

    def add(self, row: dict[str, float]) -> None:
        self.rows.append(row)
        tmp = self.path.with_name(".metrics.partial.csv")
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self._fields())
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, self.path)

    def _fields(self) -> list[str]:
        return list(dict.fromkeys(k for r in self.rows for k in r))

    def plot(self) -> None:
        """curves.png from the rows so far (at saved states only: a plot costs more than a GPU step)."""
        names = [f for f in self._fields() if f not in ("stage", "step")]
        if not names:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(len(names), 1, figsize=(6, 1.8 * len(names)), squeeze=False)
        for ax, name in zip(axes[:, 0], names, strict=True):
            points = [(r["step"], r[name]) for r in self.rows if name in r]
            ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", markersize=3)
            ax.set_ylabel(name, fontsize=8)
            ax.set_yscale("log")
        axes[-1, 0].set_xlabel("step (within its stage)")
        fig.tight_layout()
        fig.savefig(self.plot_path, dpi=80)
        plt.close(fig)


class Deadline:
    """A wall-clock limit (`--max-minutes`): a stage that reaches it saves its state and stops; None: none."""

    def __init__(self, seconds: float | None) -> None:
        self.at = time.monotonic() + seconds if seconds else None

    def passed(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at


def _device() -> torch.device:
    """Where training runs: accelerate's choice (this process's GPU when there is one, else the CPU)."""
    from accelerate import PartialState

    return PartialState().device


def _precision(config: PretrainConfig) -> str:
    return config.mixed_precision if _device().type == "cuda" else "no"


class _Rng:
    """A numpy generator (`np`) or a torch one (`torch`) as a module-like state_dict holder, so a resumed
    run draws the batches and noise an uninterrupted one would."""

    def __init__(self, rng: np.random.Generator | torch.Generator) -> None:
        self.rng = rng

    def state_dict(self) -> dict:
        if isinstance(self.rng, torch.Generator):
            return {"torch": self.rng.get_state()}
        return {"np": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        if isinstance(self.rng, torch.Generator):
            self.rng.set_state(state["torch"])
        else:
            self.rng.bit_generator.state = state["np"]


def _resume(path: Path, modules: dict[str, Any]) -> int:
    if not path.exists():
        return 0
    state = torch.load(path, weights_only=False)
    for name, module in modules.items():
        module.load_state_dict(state[name])
    log.info("resumed %s at step %d", path.name, state["step"])
    return int(state["step"])


def _save(path: Path, step: int, modules: dict[str, Any]) -> None:
    atomic_save({"step": step, **{name: module.state_dict() for name, module in modules.items()}}, path)


def train_vae(pipe: Any, frames: np.ndarray, train_ids: np.ndarray, config: PretrainConfig, out: Path,
              metrics: Metrics, progress: bool, deadline: Deadline) -> int:
    """Stage 1; returns the step it stopped at (`config.vae_steps` unless the deadline came first)."""
    from accelerate import Accelerator

    accelerator = Accelerator(mixed_precision=_precision(config))
    vae = pipe.vae
    optimizer = torch.optim.AdamW(vae.parameters(), lr=config.vae_lr, weight_decay=0.0)
    model, optimizer = accelerator.prepare(vae, optimizer)
    state_path = out / "state" / "vae.pt"
    rng, noise = np.random.default_rng(config.seed), torch.Generator().manual_seed(config.seed)
    modules = {"vae": vae, "optimizer": optimizer, "rng": _Rng(rng), "noise": _Rng(noise)}
    start = _resume(state_path, modules)
    metrics.forget_after(1, start)
    span = config.vae_clip_frames
    background = _background(frames, train_ids).to(accelerator.device)
    bar = tqdm(range(start, config.vae_steps), initial=start, total=config.vae_steps, desc="stage 1: autoencoder",
               disable=not progress, unit="step")
    model.train()
    done = start
    for step in bar:
        if deadline.passed():
            break
        ids = np.sort(rng.choice(train_ids, config.vae_batch, replace=False))
        offset = int(rng.integers(0, frames.shape[1] - span + 1))
        x = to_unit(frames[ids, offset:offset + span]).to(accelerator.device)
        posterior = model.encode(x).latent_dist
        recon = model.decode(posterior.sample(generator=noise)).sample
        error = (recon - x).abs()
        l1 = error.mean()
        weight = 1 + config.foreground_weight * _foreground(x, background)
        loss = (weight * error).mean() / weight.mean() + config.kl_weight * posterior.kl().mean()
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        done = step + 1
        bar.set_postfix(l1=f"{l1.item():.4f}")
        if done % 25 == 0 or done == config.vae_steps:
            metrics.add({"stage": 1, "step": done, "vae_l1": l1.item()})
        if done % config.save_every == 0 or done == config.vae_steps:
            _save(state_path, done, modules)
            metrics.plot()
    if done < config.vae_steps and deadline.passed():
        _save(state_path, done, modules)
    model.eval()
    return done


def _background(frames: np.ndarray, ids: np.ndarray, count: int = 256) -> torch.Tensor:
    """The per-pixel median of first frames, in [-1, 1] (3, H, W): where objects are not, most of the time."""
    pick = ids[np.linspace(0, len(ids) - 1, min(count, len(ids))).astype(int)]
    median = np.median(np.asarray(frames[pick, 0], dtype=np.float32), axis=0)
    return torch.from_numpy(median / 127.5 - 1.0).permute(2, 0, 1).contiguous()


def _foreground(x: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """1 where a pixel of (B, 3, T, H, W) differs from the background by more than 10 levels (objects and
    their shadows: a few per cent of the frame, which a plain L1 would let the table outweigh)."""
    return ((x - background[None, :, None]).abs().amax(dim=1, keepdim=True) > 10 / 127.5).float()


def _sigmas(n: int, shift: float, generator: torch.Generator) -> torch.Tensor:
    u = torch.rand(n, generator=generator)
    return shift * u / (1 + (shift - 1) * u)


def flow_loss(transformer: Any, latents: torch.Tensor, condition: torch.Tensor, text: torch.Tensor,
              sigmas: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The pipeline's own parametrisation: frame 0 clean at timestep 0, the rest at `sigmas`; velocity target."""
    s = sigmas.view(-1, 1, 1, 1, 1)
    noisy = (1 - s) * latents + s * noise
    noisy = torch.cat([condition, noisy[:, :, 1:]], dim=2)
    frames, h, w = latents.shape[2:]
    per_frame = (h // 2) * (w // 2)
    timestep = (sigmas * 1000).view(-1, 1).expand(-1, frames * per_frame).clone()
    timestep[:, :per_frame] = 0
    pred = transformer(hidden_states=noisy, timestep=timestep, encoder_hidden_states=text, return_dict=False)[0]
    return ((pred - (noise - latents))[:, :, 1:] ** 2).mean()


class _Texts:
    """Prompt embeddings from the frozen text encoder, computed once for every wording of the pool (and the
    empty prompt) in a fixed order and batching: a batch's composition moves the embeddings by ~1e-7, enough
    to make a resumed run drift from an uninterrupted one."""

    def __init__(self, pipe: Any, prompts: list[str], device: torch.device, batch: int = 64) -> None:
        wordings = sorted({"", *prompts})
        self.cache: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            for start in range(0, len(wordings), batch):
                chunk = wordings[start:start + batch]
                embeds, _ = pipe.encode_prompt(prompt=chunk, do_classifier_free_guidance=False,
                                               max_sequence_length=MAX_PROMPT_TOKENS, device=device)
                self.cache.update(zip(chunk, embeds))

    def __call__(self, prompts: list[str]) -> torch.Tensor:
        return torch.stack([self.cache[p] for p in prompts])


def train_denoiser(pipe: Any, pool: dict, prompts: list[str], train_ids: np.ndarray, val_ids: np.ndarray,
                   frames: np.ndarray, config: PretrainConfig, out: Path, metrics: Metrics, progress: bool,
                   deadline: Deadline) -> tuple[Any, int]:
    """Stage 2; returns the EMA transformer and the step it stopped at. Batches and noise are drawn on the
    CPU whatever the device, so a GPU run sees the draws a CPU run would."""
    from accelerate import Accelerator

    accelerator = Accelerator(mixed_precision=_precision(config))
    device = accelerator.device
    mean, std = pool["mean"].view(1, -1, 1, 1, 1), pool["std"].view(1, -1, 1, 1, 1)
    video, first = ((pool["video"] - mean) / std).to(device), ((pool["first"] - mean) / std).to(device)
    transformer = pipe.transformer
    ema = copy.deepcopy(transformer).requires_grad_(False).to(device)
    optimizer = torch.optim.AdamW(transformer.parameters(), lr=config.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / config.warmup))
    model, optimizer = accelerator.prepare(transformer, optimizer)
    state_path = out / "state" / "denoiser.pt"
    rng, generator = np.random.default_rng(config.seed + 1), torch.Generator().manual_seed(config.seed + 1)
    modules = {"transformer": transformer, "ema": ema, "optimizer": optimizer, "schedule": schedule,
               "rng": _Rng(rng), "noise": _Rng(generator)}
    start = _resume(state_path, modules)
    metrics.forget_after(2, start)
    texts = _Texts(pipe, prompts, device)
    val_noise = torch.Generator().manual_seed(12345)
    val = (video[val_ids], first[val_ids], texts([prompts[i] for i in val_ids]),
           _sigmas(len(val_ids), config.shift, val_noise).to(device),
           torch.randn(video[val_ids].shape, generator=val_noise).to(device))
    bar = tqdm(range(start, config.steps), initial=start, total=config.steps, desc="stage 2: denoiser",
               disable=not progress, unit="step")
    running: list[float] = []

    def record(done: int) -> None:
        with torch.no_grad():
            val_loss = flow_loss(ema, *val).item()
        metrics.add({"stage": 2, "step": done, "flow_loss": float(np.mean(running[-50:] or [np.nan])),
                     "val_flow_loss": val_loss})

    def sample(done: int) -> None:
        sample_grid(_with_ema(pipe, ema), frames, prompts, val_ids[:4], config, out / "samples" / f"step-{done:06d}.png")

    model.train()
    done = start
    ema_params, params = list(ema.parameters()), list(transformer.parameters())
    for step in bar:
        if deadline.passed():
            break
        ids = rng.choice(train_ids, config.batch, replace=False)
        batch_prompts = ["" if rng.random() < config.prompt_dropout else prompts[i] for i in ids]
        lat = video[ids]
        loss = flow_loss(model, lat, first[ids], texts(batch_prompts),
                         _sigmas(len(ids), config.shift, generator).to(device),
                         torch.randn(lat.shape, generator=generator).to(device))
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(transformer.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            torch._foreach_lerp_(ema_params, params, 1 - config.ema)
        running.append(loss.item())
        done = step + 1
        bar.set_postfix(loss=f"{np.mean(running[-50:]):.4f}")
        last = done == config.steps
        if done % 50 == 0 or done % config.save_every == 0 or last:  # a row for every saved state
            record(done)
        if done % config.save_every == 0 or last:
            _save(state_path, done, modules)
            metrics.plot()
        if done % config.sample_every == 0 or last:
            sample(done)
    if done < config.steps and deadline.passed():  # stopped early: keep, log and show what there is
        _save(state_path, done, modules)
        if not metrics.rows or metrics.rows[-1].get("step") != done:
            record(done)
        metrics.plot()
        sample(done)
    model.eval()
    return ema, done


def _with_ema(pipe: Any, ema: Any) -> Any:
    parts = {k: v for k, v in pipe.components.items()}
    parts["transformer"] = ema
    made = type(pipe)(**parts, expand_timesteps=True)
    made.set_progress_bar_config(disable=True)
    return made


def sample_grid(pipe: Any, frames: np.ndarray, prompts: list[str], ids: np.ndarray, config: PretrainConfig,
                path: Path) -> None:
    """Held-out segments: each pair of rows is the ground truth (frames 0, 4, 8, 12, 16) and the model's."""
    from PIL import Image

    rows = []
    for i in ids:
        truth = frames[i]
        made = generate(pipe, truth[0], prompts[i], config.sample_steps, seed=int(i))
        pick = np.linspace(0, len(truth) - 1, 5).astype(int)
        rows += [np.concatenate(list(truth[pick]), axis=1), np.concatenate(list(made[pick]), axis=1)]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)


def generate(pipe: Any, image: np.ndarray, prompt: str, steps: int, seed: int = 0) -> np.ndarray:
    from PIL import Image

    out = pipe(image=Image.fromarray(image), prompt=prompt, height=NATIVE_SIDE, width=NATIVE_SIDE,
               num_frames=pipeline_frames(pipe, NATIVE_FRAMES), num_inference_steps=steps, guidance_scale=1.0, output_type="np",
               max_sequence_length=MAX_PROMPT_TOKENS, generator=torch.Generator().manual_seed(seed))
    return (np.clip(out.frames[0], 0, 1) * 255).round().astype(np.uint8)


class Stopped(Exception):
    """`--max-minutes` ran out before the autoencoder was done: its state is saved, there is no pipeline yet."""


def pretrain(examples: Iterable[Example], out: str | Path, config: PretrainConfig | None = None,
             progress: bool = True, max_minutes: float | None = None) -> Path:
    """Both stages into `out` (resuming what is there); returns the trained pipeline's folder.

    With `max_minutes`, a stage that reaches the limit saves its state and stops: in stage 2 the pipeline is
    written from the EMA as it is then (the model card says at which step), in stage 1 `Stopped` is raised.
    Either way the same call again resumes."""
    config = config or PretrainConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(config.model_dump_json(indent=2))
    started = time.perf_counter()
    deadline = Deadline(max_minutes * 60 if max_minutes else None)
    frames, prompts = make_pool(examples, config.examples, out / "data", progress)
    ids = np.arange(len(prompts))
    val_ids, train_ids = ids[-config.held_out:], ids[:-config.held_out]
    pipe = tabletop_tiny_pipeline(config.seed, width=config.width, layers=config.layers)
    if config.vae_from:
        pipe.vae.load_state_dict(_vae_weights(config.vae_from))
    pipe.to(_device())
    pipe.set_progress_bar_config(disable=True)
    metrics = Metrics(out)
    vae_done = train_vae(pipe, frames, train_ids, config, out, metrics, progress, deadline)
    if vae_done < config.vae_steps:
        raise Stopped(f"the time limit came in stage 1 at step {vae_done} of {config.vae_steps}; its state is saved")
    pool = encode_pool(pipe.vae, frames, out / "data", progress=progress)
    pipe.vae.register_to_config(latents_mean=pool["mean"].tolist(), latents_std=pool["std"].tolist())
    ema, done = train_denoiser(pipe, pool, prompts, train_ids, val_ids, frames, config, out, metrics, progress,
                               deadline)
    final = _with_ema(pipe, ema)
    final.save_pretrained(out / "pipeline")
    elapsed = time.perf_counter() - started
    (out / "wall_seconds.txt").write_text(f"{elapsed:.0f}\n")  # this invocation's time (a resumed run adds its own)
    (out / "pipeline" / "MODEL_CARD.md").write_text(model_card(final, config, metrics, elapsed, done))
    return out / "pipeline"


def _vae_weights(folder: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    path = Path(folder) / "vae" / "diffusion_pytorch_model.safetensors"
    if not path.exists():
        raise ValueError(f"--vae-from {folder}: no {path.relative_to(folder)} there (give a tabletop-tiny pipeline "
                         "folder, e.g. one `spiral train pretrain` wrote)")
    return load_file(path)


def _steps(done: int, planned: int) -> str:
    return f"{done} steps" if done == planned else f"{done} steps of {planned} planned (stopped by --max-minutes)"


def _where() -> str:
    device = _device()
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{torch.get_num_threads()} CPU threads"


def model_card(pipe: Any, config: PretrainConfig, metrics: Metrics, seconds: float, steps_done: int) -> str:
    """What the weights are, what they saw, how long they took, and how they did on held-out segments."""
    def last(name: str) -> str:
        values = [r[name] for r in metrics.rows if name in r]
        return f"{values[-1]:.4f}" if values else "n/a"

    def params(module: Any) -> str:
        return f"{sum(p.numel() for p in module.parameters()) / 1e6:.2f} M"

    return "\n".join([
        "# tabletop-tiny", "",
        "A small learned text+image-to-video model of SPIRAL's procedural tabletop world: a Wan2.2-TI2V-shaped "
        "diffusers `WanImageToVideoPipeline` (first frame as latent condition), trained from scratch by "
        "`spiral train pretrain` (training/pretrain.py). Random-initialised, no external weights or data.", "",
        "## Parts", "",
        f"- VAE (Wan, patchified and residual, 8x spatial, per frame, 32 channels): {params(pipe.vae)}",
        f"- Transformer ({config.layers} blocks of width {config.width}, 2x2 latent patches): {params(pipe.transformer)}",
        f"- Text encoder (UMT5, 2 layers, frozen at its random initialisation; word-level tokenizer over the "
        f"world's words): {params(pipe.text_encoder)}",
        f"- Makes {NATIVE_FRAMES} frames of {NATIVE_SIDE}x{NATIVE_SIDE}; {config.sample_steps} Euler steps, guidance 1.", "",
        "## Data", "",
        f"{config.examples} single sub-action segments rendered without errors by the world's ground-truth executor "
        "from ActWM-Sim train-split tasks (and further draws of the train split's generator), each with the "
        "instruction SPIRAL's planner writes for it (refinement phrases added at random). The test split was never "
        f"drawn from. {config.held_out} pool segments were held out.", "",
        "## Training", "",
        f"- Autoencoder: {f'from {config.vae_from}, then ' if config.vae_from else ''}{config.vae_steps} steps, batch {config.vae_batch} clips of {config.vae_clip_frames} frames, "
        f"L1 (object pixels weighted {1 + config.foreground_weight:g}x against the background, the per-pixel "
        f"median of the pool's first frames) + {config.kl_weight:g} KL, AdamW {config.vae_lr:g}.",
        f"- Denoiser: {_steps(steps_done, config.steps)}, batch {config.batch}, flow matching (shift "
        f"{config.shift:g}), AdamW {config.lr:g}, prompt dropout {config.prompt_dropout:g}, EMA {config.ema:g} (the "
        "EMA is what is saved).",
        f"- Precision: {'bf16 autocast' if _precision(config) == 'bf16' else 'float32'}. Wall time of the invocation that finished these weights: "
        f"{seconds / 60:.1f} min on {_where()} (a resumed run's earlier invocations add theirs).", "",
        "## Held-out figures (the held-out pool segments)", "",
        f"- Autoencoder L1 (last logged, training clips): {last('vae_l1')}",
        f"- Flow-matching loss of the EMA model on held-out segments: {last('val_flow_loss')}",
        "- Task success under the loop, scored by the independent judge: docs/benchmarks.md, `spiral bench "
        "--suite tabletop-tiny`.", ""])
