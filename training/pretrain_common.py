"""What both stages of `tabletop-tiny` pre-training share: metrics on disk, a wall-clock deadline, the device,
and resumable state (modules and random generators saved together, atomically)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..tools.errors import DamagedDataError
from .config import PretrainConfig
from .metrics import MetricsLog
from .pretrain_data import atomic_save

log = logging.getLogger(__name__)


def Metrics(folder: Path) -> MetricsLog:  # noqa: N802 — the name pre-training has always used
    """Pre-training's metrics: per stage, on a log scale (losses fall by orders of magnitude)."""
    return MetricsLog(folder, x_label="step (within its stage)", log_scale=True)


class Deadline:
    """A wall-clock limit (`--max-minutes`): a stage that reaches it saves its state and stops; None: none."""

    def __init__(self, seconds: float | None) -> None:
        self.at = time.monotonic() + seconds if seconds else None

    def passed(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at


def train_device() -> torch.device:
    """Where training runs: accelerate's choice (this process's GPU when there is one, else the CPU)."""
    from accelerate import PartialState

    return PartialState().device


def precision(config: PretrainConfig) -> str:
    return config.mixed_precision if train_device().type == "cuda" else "no"


class Rng:
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


def resume_state(path: Path, modules: dict[str, Any]) -> int:
    """The step a saved state reached, loaded into `modules` (0 when there is none); one line for a state that
    does not load (cut short, overwritten, or from another model size)."""
    if not path.exists():
        return 0
    try:
        state = torch.load(path, weights_only=False)
        for name, module in modules.items():
            module.load_state_dict(state[name])
    except Exception as exc:  # noqa: BLE001 — torch.load and load_state_dict raise many kinds for a bad file
        raise DamagedDataError(f"{path} is damaged or from another model ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0][:120] if str(exc) else ''}): delete it to start that stage "
                               "over, or pass another --out") from None
    log.info("resumed %s at step %d", path.name, state["step"])
    return int(state["step"])


def save_state(path: Path, step: int, modules: dict[str, Any]) -> None:
    atomic_save({"step": step, **{name: module.state_dict() for name, module in modules.items()}}, path)


def check_finite(loss: torch.Tensor, stage: str, step: int, state_path: Path) -> None:
    """Stop before a non-finite loss reaches the weights: the last saved state stays as it was."""
    if not torch.isfinite(loss.detach()).all():
        from ..tools.errors import SpiralError

        kept = f"the last good state is {state_path}" if state_path.exists() else "no state was saved yet"
        raise SpiralError(f"{stage}: the loss at step {step + 1} is not finite; nothing was changed and {kept}: lower "
                          "the learning rate and run the same command again to resume")
