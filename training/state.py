"""What every trainer shares: accelerate, the LoRA, the optimizer, resumable state, metrics on disk.

Training state is saved with `accelerator.save_state` into `state/step-N`
(written under a temporary name, then renamed: a run killed mid-save leaves the
previous state intact), holding the adapter's weights (not the frozen base
model: a hook replaces accelerate's full-model save), the optimizer, the RNGs
and the step count. `resume()` loads the newest complete one. Metrics go to
accelerate's trackers when one is installed (TensorBoard, wandb, MLflow), and
always to `metrics.csv` and `curves.png` next to the run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from ..tools.errors import DamagedDataError, SpiralError
from ..tools.video.adapters import (
    AdapterCard,
    add_lora,
    load_adapter_weights,
    save_adapter,
)
from .metrics import MetricsLog

log = logging.getLogger(__name__)


class NonFiniteTraining(SpiralError):
    """A training step would have made the weights non-finite; nothing was changed."""
KEEP_STATES = 2
"""Saved training states kept (the newest); older ones are deleted after each save."""


class StepCounter:
    """The optimizer-step count, saved and restored with accelerate's state."""

    def __init__(self) -> None:
        self.steps = 0

    def state_dict(self) -> dict[str, int]:
        return {"steps": self.steps}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.steps = int(state["steps"])


def _trackers() -> list[str]:
    found = []
    for name, module in (("tensorboard", "tensorboard"), ("wandb", "wandb"), ("mlflow", "mlflow")):
        with contextlib.suppress(ImportError):
            __import__(module)
            found.append(name)
    return found[:1]


class TrainingRun:
    """A LoRA being trained on a pipeline's transformer, its optimizer and its files."""

    method = ""

    def __init__(self, pipe: Any, backbone: str, base_model: str, config: Any, output_dir: str | Path,
                 init_adapter: str | Path | None = None) -> None:
        from accelerate import Accelerator
        from accelerate.utils import ProjectConfiguration

        self.pipe, self.backbone, self.base_model, self.config = pipe, backbone, base_model, config
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        trackers = _trackers()
        # mixed precision is this class's own bf16 autocast (`autocast`), not accelerate's: accelerate keeps it
        # in process-wide state that a second trainer with another setting may not change
        self.accelerator = Accelerator(mixed_precision="no", log_with=trackers or None,
                                       project_config=ProjectConfiguration(project_dir=str(self.output_dir),
                                                                           logging_dir=str(self.output_dir / "logs")))
        if trackers:
            self.accelerator.init_trackers(f"spiral-{self.method}")
        transformer = pipe.transformer
        self.params = add_lora(transformer, config.lora.rank, config.lora.alpha, config.lora.targets, config.seed)
        if init_adapter is not None:  # continue an adapter (the next round of a training loop)
            load_adapter_weights(transformer, init_adapter)  # copied into the float32 parameters above
        if config.gradient_checkpointing and hasattr(transformer, "enable_gradient_checkpointing"):
            transformer.enable_gradient_checkpointing()
        optimizer = torch.optim.AdamW(self.params, lr=config.learning_rate, weight_decay=config.weight_decay)
        self.model, self.optimizer = self.accelerator.prepare(transformer, optimizer)
        self.unwrapped = transformer
        self.counter = StepCounter()
        self.accelerator.register_for_checkpointing(self.counter)
        self.accelerator.register_save_state_pre_hook(self._save_only_the_adapter)
        self.accelerator.register_load_state_pre_hook(self._load_only_the_adapter)
        self.device = self.accelerator.device
        self.metrics = MetricsLog(self.output_dir, x_label="optimizer step")

    # -- accelerate hooks: the frozen base model is never written, only the adapter ------------------
    def _save_only_the_adapter(self, models: list, weights: list, output_dir: str) -> None:
        from peft.utils import get_peft_model_state_dict
        from safetensors.torch import save_file

        if self.accelerator.is_main_process:
            state = get_peft_model_state_dict(self.unwrapped, adapter_name="spiral")
            save_file({k: v.contiguous() for k, v in state.items()}, os.path.join(output_dir, "adapter.safetensors"))
        weights.clear()

    def _load_only_the_adapter(self, models: list, input_dir: str) -> None:
        from peft.utils import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(self.unwrapped, load_file(os.path.join(input_dir, "adapter.safetensors")),
                                  adapter_name="spiral")
        models.clear()

    # -- helpers for trainers -----------------------------------------------------------------------
    @property
    def steps(self) -> int:
        return self.counter.steps

    def autocast(self):
        enabled = self.config.mixed_precision == "bf16" and self.device.type == "cuda"
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=enabled)

    @contextlib.contextmanager
    def adapter_disabled(self):
        """The reference policy: the base weights, the adapter switched off."""
        self.unwrapped.disable_adapters()
        try:
            yield
        finally:
            self.unwrapped.enable_adapters()

    def my_share(self, items: list) -> list:
        """This process's items: every n-th of a list cut to a multiple of the process count (DDP needs
        the same number of backward passes everywhere)."""
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        usable = len(items) - len(items) % world
        if usable < len(items):
            log.warning("%d of %d samples left out to split them evenly over %d processes",
                        len(items) - usable, len(items), world)
        return items[:usable][rank::world]

    def pass_over(self, items: list, work: Callable[[int, Any], Iterable[dict[str, float]]],
                  skip_steps: int = 0) -> dict[str, float]:
        """One pass over this process's share of `items`: `work(index, item)` runs the backward passes
        and yields what it measured; an optimizer step every `gradient_accumulation` items; the first
        `skip_steps` steps are skipped (a resumed run). Returns the mean of each measured quantity."""
        totals: dict[str, float] = {}
        count, step_in_call = 0, 0
        mine = self.my_share(list(enumerate(items)))
        for n, (index, item) in enumerate(mine, start=1):
            closes_step = n % self.config.gradient_accumulation == 0 or n == len(mine)
            if step_in_call < skip_steps:
                step_in_call += closes_step
                continue
            for stats in work(index, item):
                for k, v in stats.items():
                    totals[k] = totals.get(k, 0.0) + v
                count += 1
            if closes_step:
                self.optimizer_step()
                step_in_call += 1
        return {k: v / max(count, 1) for k, v in totals.items()}

    def steps_per_pass(self, items: int) -> int:
        """Optimizer steps one pass over `items` items takes."""
        mine = (items - items % self.accelerator.num_processes) // self.accelerator.num_processes
        return -(-mine // self.config.gradient_accumulation)

    def optimizer_step(self) -> None:
        """Clip, step, and save every `save_every` steps; a step whose gradients are not finite (a NaN reward,
        a learning rate too high) is not taken: training stops with the last saved state as it was."""
        norm = self.accelerator.clip_grad_norm_(self.params, self.config.max_grad_norm)
        if norm is not None and not torch.isfinite(torch.as_tensor(norm)).all():
            self.optimizer.zero_grad(set_to_none=True)
            latest = self.latest_state()
            kept = f"the last good state is {latest}" if latest else "no state was saved yet"
            raise NonFiniteTraining(f"{self.method}: optimizer step {self.counter.steps + 1} has non-finite gradients "
                                    f"(a NaN or infinite reward or loss; or a learning rate too high); it was not "
                                    f"taken and {kept}: check the rewards, or lower --lr, and run again to resume")
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.counter.steps += 1
        if self.counter.steps % self.config.save_every == 0:
            self.save_state()

    # -- files -----------------------------------------------------------------------------------------
    def save_state(self) -> Path:
        """Everything needed to resume, written atomically as state/step-N."""
        root = self.output_dir / "state"
        final = root / f"step-{self.counter.steps:06d}"
        scratch = root / f".partial-step-{self.counter.steps:06d}"
        if self.accelerator.is_main_process:
            shutil.rmtree(scratch, ignore_errors=True)
            root.mkdir(parents=True, exist_ok=True)
        self.accelerator.wait_for_everyone()
        self.accelerator.save_state(str(scratch))
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            shutil.rmtree(final, ignore_errors=True)
            os.replace(scratch, final)
            for old in sorted(root.glob("step-*"))[:-KEEP_STATES]:  # the newest ones suffice to resume
                shutil.rmtree(old, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        return final

    def latest_state(self) -> Path | None:
        states = sorted((self.output_dir / "state").glob("step-*"))
        return states[-1] if states else None

    def resume(self) -> int:
        """Load the newest complete saved state, if any; returns the optimizer steps already done."""
        latest = self.latest_state()
        if latest is not None:
            try:
                self.accelerator.load_state(str(latest))
            except Exception as exc:  # noqa: BLE001 — accelerate and torch raise many kinds for a bad state
                raise DamagedDataError(f"{latest} is damaged or from another run ({type(exc).__name__}): delete that "
                                       "folder to resume from the state before it, or pass another --out") from None
            log.info("resumed %s from %s (%d optimizer steps)", self.method, latest, self.counter.steps)
        self.metrics.forget_after(self.counter.steps)
        return self.counter.steps

    def log(self, values: dict[str, float]) -> None:
        """One row of metrics: to the trackers, to metrics.csv, and into curves.png (training/metrics.py)."""
        if self.accelerator.trackers:
            self.accelerator.log(values, step=self.counter.steps)
        if self.accelerator.is_main_process:
            self.metrics.add({"step": float(self.counter.steps), **{k: float(v) for k, v in values.items()}})
            self.metrics.plot()

    def save_adapter(self, directory: str | Path | None = None, notes: str = "") -> Path:
        """The trained LoRA, loadable with `spiral run --lora DIR` (and by plain diffusers)."""
        directory = Path(directory) if directory else self.output_dir / "adapter"
        lora = self.config.lora
        card = AdapterCard(backbone=self.backbone, base_model=self.base_model, rank=lora.rank, alpha=lora.alpha,
                           targets=lora.targets, method=self.method, optimizer_steps=self.counter.steps, notes=notes)
        if self.accelerator.is_main_process:
            save_adapter(self.pipe, self.unwrapped, directory, card)
        self.accelerator.wait_for_everyone()
        return directory

    def close(self) -> None:
        """End the trackers and take the adapter off the pipeline (which may be shared in this process)."""
        if self.accelerator.trackers:
            self.accelerator.end_training()
        if hasattr(self.unwrapped, "disable_gradient_checkpointing"):
            self.unwrapped.disable_gradient_checkpointing()
        self.unwrapped.delete_adapters("spiral")
        self.unwrapped.eval()
