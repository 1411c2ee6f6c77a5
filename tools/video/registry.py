"""Backbones by name, each loaded once per process and reused.

`load_generator("sim")` returns the same object every time it is asked with the
same options, so a graph run of N segments (or a bench of M episodes) pays the
load once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import UnknownBackboneError
from .base import VideoGenerator


@dataclass(frozen=True)
class BackboneInfo:
    name: str
    factory: Callable[..., VideoGenerator]
    description: str
    needs_gpu: bool = False
    settings: tuple[str, ...] = ()
    """Run-context fields passed to the factory as keyword options (e.g. `difficulty`)."""


_REGISTRY: dict[str, BackboneInfo] = {}
_CACHE: dict[tuple[str, str], VideoGenerator] = {}
_LOCK = threading.Lock()


def register_backbone(name: str, factory: Callable[..., VideoGenerator], description: str,
                      *, needs_gpu: bool = False, settings: tuple[str, ...] = ()) -> None:
    _REGISTRY[name] = BackboneInfo(name, factory, description, needs_gpu, settings)


def backbone_names() -> list[str]:
    _ensure_builtins()
    return sorted(_REGISTRY)


def backbone_info(name: str) -> BackboneInfo:
    _ensure_builtins()
    if name not in _REGISTRY:
        raise UnknownBackboneError(f"unknown backbone {name!r}; choose one of: {', '.join(backbone_names())}")
    return _REGISTRY[name]


def load_generator(name: str, **options: Any) -> VideoGenerator:
    """The process-wide instance of backbone `name` with these options."""
    info = backbone_info(name)
    key = (name, json.dumps(options, sort_keys=True, default=str))
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = info.factory(**options)
        return _CACHE[key]


def clear_cache() -> None:
    """Drop every loaded backbone (tests; freeing GPU memory)."""
    with _LOCK:
        _CACHE.clear()


def _ensure_builtins() -> None:
    if "sim" not in _REGISTRY:
        from .sim import SimVideoGenerator

        register_backbone(
            "sim",
            SimVideoGenerator,
            "SIMULATOR of a TI2V model on the procedural tabletop world (CPU, no weights); "
            "fails the way open-loop video models fail, per a documented error model",
            settings=("difficulty",),
        )
        from .diffusers_backbone import register_all

        register_all()
