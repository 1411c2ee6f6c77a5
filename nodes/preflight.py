"""Preflight: everything the first steps would reject, checked before a thread exists.

The settings (the backbone's checks, an API key for LLM agents), an unreadable
start image, an image outside the tabletop world where an offline agent or the
sim backbone would read it, an image with no objects, and with the rule planner an action
outside the grammar or naming objects that are not there. It writes nothing,
and hands back the start frame at the run's size: the session stores it and
starts the thread with its artifact ref, so the first steps neither read the
user's file again nor ground the action again (grounding is memoised).

`check_start` is the same check from a server request's raw input and run
context (shell/auth.py runs it when a run is created).
"""

from __future__ import annotations

import numpy as np
from pydantic import ValidationError

from ..tools.errors import InputError
from ..vocabulary.config import RunContext
from ..vocabulary.state import EpisodeInput
from .ingest import check_settings, load_start_frame
from .plan import read_start
from .planner import ground_action
from .reading import run_reading


def preflight(image: str, action: str, settings: RunContext) -> np.ndarray:
    check_settings(settings)
    frame = load_start_frame(image, settings)
    scene, _ = read_start(frame, settings, run_reading(settings).perceive)  # outside the tabletop world: refused
    if settings.planner == "rule":
        ground_action(action, scene)
    return frame


def check_start(episode_input: dict | None, context: dict) -> RunContext:
    """What a server checks before it accepts a run (shell/auth.py): the run context's fields and
    bounds, the backbone's own checks, and for a new episode the input and everything preflight checks.
    Raises InputError (or another SpiralError) with the same one line the CLI prints."""
    unknown = sorted(set(context) - set(RunContext.model_fields))
    if unknown:
        raise InputError(f"unknown run-context field {unknown[0]!r}; the fields are {', '.join(RunContext.model_fields)}")
    settings = RunContext.from_fields(context)
    if episode_input is None:  # a resume or a review answer: the thread's saved settings apply
        settings.check_backbone()
        return settings
    try:
        given = EpisodeInput.model_validate(episode_input)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise InputError(f"input.{'.'.join(map(str, error['loc']))}: {error['msg']}") from None
    preflight(given.image, given.action, settings)
    return settings
