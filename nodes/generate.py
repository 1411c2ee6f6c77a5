"""Act: render one segment of the current sub-action with the video generator, from the last accepted frame."""

from __future__ import annotations

import zlib

from langgraph.runtime import Runtime

from ..graph.config import RunContext
from ..graph.events import GeneratorProgress, SegmentReady
from ..graph.state import Attempt, EpisodeState
from ..memory.artifacts import ArtifactStore
from ..memory.traces import AttemptRecord
from ..tools.media import data_url, thumbnail_jpeg
from ..tools.video import SegmentRequest, load_generator
from .context import NodeContext


def derive_seed(seed: int, sub_action: int, try_index: int, plan_version: int) -> int:
    """A generator seed per (episode seed, sub-action, try, plan version)."""
    return zlib.crc32(f"{seed}:{sub_action}:{try_index}:{plan_version}".encode()) & 0x7FFFFFFF


def save_trajectory(store: ArtifactStore, trajectory) -> str:
    """The prompt embeddings as their own artifact (shared by every attempt with that prompt),
    then the per-step tensors with a reference to them in the metadata."""
    embeds = store.put_tensors({"prompt_embeds": trajectory.prompt_embeds})
    return store.put_tensors(trajectory.tensors(), {"prompt_embeds": embeds,
                                                    "noise_level": str(trajectory.noise_level)})


def generate(state: EpisodeState, runtime: Runtime[RunContext]) -> dict:
    ctx = NodeContext.of(state, runtime)
    settings, store = ctx.settings, ctx.artifacts
    step, ledger = ctx.step(state), ctx.ledger(state)
    generator = load_generator(settings.backbone, **settings.generator_options())
    try_index = len(state.attempts)
    seed = derive_seed(settings.seed, state.cursor, try_index, state.plan_version)
    request = SegmentRequest(image=store.get_frame(ledger.last_frame), prompt=state.instruction,
                             num_frames=settings.num_frames, height=settings.height, width=settings.width,
                             num_inference_steps=settings.num_inference_steps,
                             guidance_scale=settings.guidance_scale, seed=seed, trajectory=settings.trajectory,
                             sde_noise_level=settings.sde_noise_level)

    def progress(done: int, steps: int) -> None:
        ctx.emit(GeneratorProgress(sub_action=state.cursor, try_index=try_index, step=done, steps=steps,
                                   backbone=settings.backbone))

    segment = generator.generate(request, progress=progress)
    thumbnail = thumbnail_jpeg(segment.frames[-1])
    attempt = Attempt(sub_action_index=state.cursor, try_index=try_index, plan_version=state.plan_version,
                      prompt=state.instruction, seed=seed, segment=store.put_frames(segment.frames),
                      last_frame=store.put_frame(segment.frames[-1]), thumbnail=store.put_bytes(thumbnail, "jpg", durable=False),
                      trajectory=save_trajectory(store, segment.trajectory) if segment.trajectory is not None else "")
    ctx.emit(SegmentReady(sub_action=state.cursor, try_index=try_index, segment=attempt.segment,
                          thumbnail=data_url(thumbnail, "image/jpeg"), prompt=attempt.prompt, seed=seed))
    ctx.traces.record_attempt(AttemptRecord(
        thread_id=ctx.thread_id, plan_version=state.plan_version, sub_action_index=state.cursor,
        try_index=try_index, sub_action_id=step.id, verb=step.verb,
        movers=[m for m in (step.subject, step.partner) if m], postconditions=step.postconditions,
        prompt=attempt.prompt, flags=list(state.instruction_flags), seed=seed, backbone=settings.backbone,
        conditioning_frame=ledger.last_frame, segment=attempt.segment, last_frame=attempt.last_frame,
        thumbnail=attempt.thumbnail, trajectory=attempt.trajectory,
        generate_s=round(segment.timings.get("generate_s", 0.0), 4)))
    return {"attempts": attempt, "generator_calls": state.generator_calls + 1}
