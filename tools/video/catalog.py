"""The built-in backbones: the `sim` simulator and the diffusers TI2V pipelines.

Registering imports neither torch nor the simulator: each factory and
validator imports what it needs when it is called.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from . import diffusers_specs
from .base import VideoGenerator
from .registry import register_backbone

SIM_RULES = "any frame count 2-257 and sides 32-2048; option: --difficulty easy|medium|hard"


def _source(model: str) -> str:
    """Where a backbone's weights come from, as a person reads it: a hub id, or shipped with SPIRAL."""
    if not model:
        return "built in code"
    return "weights shipped with SPIRAL" if Path(model).is_absolute() else model


def _sim(difficulty: str = "medium") -> VideoGenerator:
    from .sim import SimVideoGenerator

    return SimVideoGenerator(difficulty)


def _check_sim(*, num_frames: int, height: int, width: int, difficulty: str = "medium") -> None:
    from .sim import preset

    preset(difficulty)


def _diffusers(name: str, **options: Any) -> VideoGenerator:
    from .diffusers_backbone import DiffusersBackbone

    return DiffusersBackbone(name, **options)


def _remote(**options: Any) -> VideoGenerator:
    from .remote import RemoteVideoBackbone

    options.pop("trajectory", None)  # refused by the validator; the backbone refuses it again per request
    return RemoteVideoBackbone(**options)


def _check_remote(**options: Any) -> None:
    from .remote import check_remote

    check_remote(**options)


def register_builtins() -> None:
    register_backbone(
        "sim", _sim,
        "SIMULATOR of a TI2V model on the procedural tabletop world (CPU, no weights); "
        "fails the way open-loop video models fail, per a documented error model",
        settings=("difficulty",), validate=_check_sim, rules=SIM_RULES, frames="sharp")
    for name, spec in diffusers_specs.SPECS.items():
        register_backbone(
            name, partial(_diffusers, name),
            f"{spec.pipeline} ({_source(spec.default_model)}); {spec.notes}",
            needs_gpu=spec.needs_gpu, settings=diffusers_specs.OPTIONS, takes_goal=spec.takes_goal,
            validate=partial(diffusers_specs.validate, name), rules=spec.rules())
    register_backbone(
        "remote", _remote,
        "a video-serving engine over the OpenAI-style /v1/videos API (vLLM-Omni, SGLang Diffusion, "
        "`spiral serve-generator`) at SPIRAL_GENERATOR_URL; pixels only: no RL trajectories",
        settings=("model", "trajectory"), environment=("generator_url", "generator_api_key"),
        validate=_check_remote, rules="what the engine accepts; --model names the engine's model (default: its own)")


register_builtins()
