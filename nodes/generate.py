"""Act: render one segment of the current sub-action with the video generator."""

from __future__ import annotations

import zlib

from langgraph.runtime import Runtime

from ..graph.config import RunContext
from ..graph.events import GeneratorProgress, SegmentReady
from ..graph.state import Attempt, EpisodeState
from ..memory.artifacts import ArtifactStore
from ..tools.media import thumbnail_data_url
from ..tools.video import SegmentRequest, backbone_info, load_generator
from .runtime import artifact_store, thread_id, trace_db


def derive_seed(seed: int, sub_action: int, try_index: int, plan_version: int) -> int:
    """A generator seed per (episode seed, sub-action, try, plan version)."""
    return zlib.crc32(f"{seed}:{sub_action}:{try_index}:{plan_version}".encode()) & 0x7FFFFFFF


def backbone_options(settings: RunContext) -> dict:
    """The run-context fields this backbone takes (its registry entry names them)."""
    return {name: getattr(settings, name) for name in backbone_info(settings.backbone).settings}


def save_trajectory(store: ArtifactStore, trajectory) -> str:
    """The prompt embeddings as their own artifact (shared by every attempt with that prompt),
    then the per-step tensors with a reference to them in the metadata."""
    embeds = store.put_tensors({"prompt_embeds": trajectory.prompt_embeds})
    return store.put_tensors(trajectory.tensors(), {"prompt_embeds": embeds,
                                                    "noise_level": str(trajectory.noise_level)})


def generate(state: EpisodeState, runtime: Runtime[RunContext]) -> dict:
    settings = state.settings
    assert settings is not None
    store = artifact_store(settings)
    generator = load_generator(settings.backbone, **backbone_options(settings))
    try_index = len(state.attempts)
    seed = derive_seed(settings.seed, state.cursor, try_index, state.plan_version)
    request = SegmentRequest(image=store.get_frame(state.ledger.last_frame), prompt=state.instruction,
                             num_frames=settings.num_frames, height=settings.height, width=settings.width,
                             num_inference_steps=settings.num_inference_steps,
                             guidance_scale=settings.guidance_scale, seed=seed, trajectory=settings.trajectory,
                             sde_noise_level=settings.sde_noise_level)
    emit = runtime.stream_writer

    def progress(step: int, steps: int) -> None:
        emit(GeneratorProgress(sub_action=state.cursor, try_index=try_index, step=step, steps=steps,
                               backbone=settings.backbone).model_dump())

    segment = generator.generate(request, progress=progress)
    trajectory = save_trajectory(store, segment.trajectory) if segment.trajectory is not None else ""
    attempt = Attempt(sub_action_index=state.cursor, try_index=try_index, plan_version=state.plan_version,
                      prompt=state.instruction, seed=seed, segment=store.put_frames(segment.frames),
                      last_frame=store.put_frame(segment.frames[-1]), trajectory=trajectory,
                      thumbnail=thumbnail_data_url(segment.frames[-1]))
    emit(SegmentReady(sub_action=state.cursor, try_index=try_index, segment=attempt.segment,
                      thumbnail=attempt.thumbnail, prompt=attempt.prompt, seed=seed).model_dump())
    sub = state.current()
    trace_db(settings).record_attempt(thread_id(), {
        **attempt.model_dump(exclude={"critique"}), "backbone": settings.backbone,
        "postconditions": sub.postconditions, "movers": [m for m in (sub.subject, sub.partner) if m],
        "verb": sub.verb, "flags": list(state.instruction_flags),
        "generate_s": round(segment.timings.get("generate_s", 0.0), 4)})
    return {"attempts": [*state.attempts, attempt], "generator_calls": state.generator_calls + 1}
