"""Ingest: check the run's settings, store the start image as an artifact, and save the settings in state.

The first step of every episode, and one that cannot fail halfway through a
plan: once it is checkpointed, the settings are in the state, so a run that
fails later (an LLM server that is down while planning) resumes with them.
The start image becomes an artifact at the run's size and `image` its ref, so
an image sent inline (a base64 data URL) is stored once, not in every
checkpoint.
"""

from __future__ import annotations

import numpy as np
from langgraph.runtime import Runtime
from PIL import Image

from ..memory.artifacts import REF_PATTERN, ArtifactStore
from ..memory.traces import EpisodeRecord
from ..tools.errors import InputError
from ..tools.host import available_memory
from ..tools.media import load_image
from ..tools.paths import writable_folder
from ..vocabulary.config import RunContext
from ..vocabulary.environment import environment
from ..vocabulary.state import EpisodeState
from .context import NodeContext
from .credentials import llm_endpoint
from .prompts.templates import check_prompts_dir


def check_settings(settings: RunContext) -> None:
    """What the settings alone can get wrong, before any work: the backbone's own checks of sizes and
    options, and an API key when an agent is an LLM."""
    settings.check_backbone()
    if settings.planner == "llm" or settings.critic in ("llm", "ensemble"):
        llm_endpoint(settings)
    if settings.prompts_dir:
        check_prompts_dir(settings.prompts_dir)
    if settings.out_dir:
        writable_folder(settings.out_dir, "--out", make=False)
    check_memory(settings)


SEGMENT_COPIES = 10
"""Peak memory of an episode per byte of one segment (frames x height x width x 3): 8.4 measured on `sim`
(64 and 128 frames of 512x512: 570 and 988 MB peak), with room for the video encoder."""


def check_memory(settings: RunContext) -> None:
    """Refuse, before any work, a segment size this machine cannot hold (rather than be killed half way)."""
    free = available_memory()
    need = SEGMENT_COPIES * settings.num_frames * settings.height * settings.width * 3 + 2**29
    if free is not None and need > free:
        raise InputError(f"a segment of {settings.num_frames} frames at {settings.width}x{settings.height} needs "
                         f"about {need / 2**30:.1f} GiB of memory here and {free / 2**30:.1f} GiB are free: lower "
                         "--frames, --height or --width")


def load_start_frame(image: str, settings: RunContext, store: ArtifactStore | None = None) -> np.ndarray:
    """The start image at the run's size (Lanczos), from a path, URL, data URL or artifact ref."""
    if REF_PATTERN.fullmatch(image) and store is not None:
        frame = store.get_frame(image)
    else:
        frame = load_image(image, environment().input_root or None)
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
