"""Ingest: check the run's settings, store the start image as an artifact, and save the settings in state.

The first step of every episode, and one that cannot fail halfway through a
plan: once it is checkpointed, the settings are in the state, so a run that
fails later (an LLM server that is down while planning) resumes with them.
The start image becomes an artifact at the run's size and `image` its ref, so
an image sent inline (a base64 data URL) is stored once, not in every
checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from langgraph.runtime import Runtime
from PIL import Image

from ..graph.config import RunContext
from ..graph.state import EpisodeState
from ..memory.artifacts import REF_PATTERN, ArtifactStore
from ..memory.traces import EpisodeRecord
from ..tools.errors import InputError
from ..tools.llm import require_api_key
from ..tools.media import load_image
from .context import NodeContext
from .prompts.templates import check_prompts_dir


def check_settings(settings: RunContext) -> None:
    """What the settings alone can get wrong, before any work: the backbone's own checks of sizes and
    options, and an API key when an agent is an LLM."""
    settings.check_backbone()
    if settings.planner == "llm" or settings.critic in ("llm", "ensemble"):
        require_api_key()
    if settings.prompts_dir:
        check_prompts_dir(settings.prompts_dir)
    if settings.out_dir and Path(settings.out_dir).exists() and not Path(settings.out_dir).is_dir():
        raise InputError(f"--out {settings.out_dir} is a file, not a folder")


def load_start_frame(image: str, settings: RunContext, store: ArtifactStore | None = None) -> np.ndarray:
    """The start image at the run's size (Lanczos), from a path, URL, data URL or artifact ref."""
    if REF_PATTERN.fullmatch(image) and store is not None:
        frame = store.get_frame(image)
    else:
        frame = load_image(image)
    if frame.shape[:2] != (settings.height, settings.width):
        frame = np.asarray(Image.fromarray(frame).resize((settings.width, settings.height), Image.LANCZOS))
    return frame


def episode_record(thread_id: str, action: str, settings: RunContext) -> EpisodeRecord:
    return EpisodeRecord(thread_id=thread_id, action=action, backbone=settings.backbone, planner=settings.planner,
                         critic=settings.critic, seed=settings.seed, settings=settings.model_dump())


def ingest(state: EpisodeState, runtime: Runtime[RunContext]) -> dict:
    ctx = NodeContext.of(state, runtime)
    check_settings(ctx.settings)
    frame = load_start_frame(state.image, ctx.settings, ctx.artifacts)
    ctx.traces.record_episode(episode_record(ctx.thread_id, state.action, ctx.settings))
    return {"settings": ctx.settings, "image": ctx.artifacts.put_frame(frame), "status": "planning"}
