"""Backbones by name, each loaded once per process and reused.

A backbone registers its factory, the run settings it takes, a validator that
checks a request before any work, and a line on what it accepts; nothing
outside the registry needs to know a backbone's name or kind.
`load_generator("sim")` returns the same object every time it is asked with the
same options, so a graph run of N segments (or a bench of M episodes) pays the
load once. The built-in backbones are registered by `catalog.py` when the
package is imported.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import UnknownBackboneError
from .base import VideoGenerator

Validator = Callable[..., None]
"""`validate(num_frames=..., height=..., width=..., **settings)`: raise InputError saying what to change."""


@dataclass(frozen=True)
class BackboneInfo:
    name: str
    factory: Callable[..., VideoGenerator]
    description: str
    needs_gpu: bool = False
    settings: tuple[str, ...] = ()
    """Run-context fields passed to the factory (and the validator) as keyword options."""
    validate: Validator | None = None
    rules: str = ""
    """What the backbone accepts (frame counts, sizes, options), one line for `spiral backbones`."""
    takes_goal: bool = False
    """It is shown `SegmentRequest.goal` (the planner computes one only for such a backbone)."""
    environment: tuple[str, ...] = ()
    """Operator settings (fields of SPIRAL's environment, never a run's input) passed to the factory and the
    validator: an engine's URL and key, which a client of a SPIRAL server must not be able to move."""
    frames: Literal["sharp", "learned"] = "learned"
    """What its frames are like: `sharp` (the world's renderer: exact edges and colours) or `learned` (a decoder's
    soft edges and shifted colours); the critic reads them accordingly (nodes/reading.py)."""

    def check(self, *, num_frames: int, height: int, width: int, **settings: Any) -> None:
        """Every check that needs no weights, before any work (so bad input leaves nothing behind)."""
        if self.validate is not None:
            self.validate(num_frames=num_frames, height=height, width=width, **settings)


_REGISTRY: dict[str, BackboneInfo] = {}
_CACHE: dict[tuple[str, str], VideoGenerator] = {}
_LOCK = threading.Lock()


def register_backbone(name: str, factory: Callable[..., VideoGenerator], description: str, *,
                      needs_gpu: bool = False, settings: tuple[str, ...] = (), validate: Validator | None = None,
                      rules: str = "", takes_goal: bool = False, environment: tuple[str, ...] = (),
                      frames: Literal["sharp", "learned"] = "learned") -> None:
    _REGISTRY[name] = BackboneInfo(name, factory, description, needs_gpu, settings, validate, rules, takes_goal,
                                   environment, frames)


def backbone_names() -> list[str]:
    return sorted(_REGISTRY)


def backbone_info(name: str) -> BackboneInfo:
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
