"""Act: render one segment of the current sub-action with the video generator, from the last accepted frame."""

from __future__ import annotations

import zlib

from langgraph.runtime import Runtime

from ..memory.artifacts import ArtifactStore
from ..memory.traces import AttemptRecord
from ..tools.media import data_url, thumbnail_jpeg
from ..tools.video import SegmentRequest, backbone_info, generate_group, load_generator
from ..vocabulary.config import RunContext
from ..vocabulary.events import GeneratorProgress, SegmentReady
from ..vocabulary.state import Attempt, Candidate, EpisodeState
from .context import NodeContext
from .goal import goal_for


def derive_seed(seed: int, sub_action: int, try_index: int, plan_version: int, sample: int = 0) -> int:
    """A generator seed per (episode seed, sub-action, try, plan version, sample of the try's group)."""
    suffix = f":{sample}" if sample else ""  # sample 0 keeps the seeds runs had before groups existed
    return zlib.crc32(f"{seed}:{sub_action}:{try_index}:{plan_version}{suffix}".encode()) & 0x7FFFFFFF


def save_trajectory(store: ArtifactStore, trajectory) -> str:
    """The conditioning as its own artifact (content-addressed: shared by every sample of a group and
    every attempt with the same frame and prompt), then the per-step tensors referring to it."""
    cond = trajectory.conditioning
    conditioning = store.put_tensors(cond.tensors(), cond.metadata())
    return store.put_tensors(trajectory.tensors(), {**trajectory.metadata, "conditioning": conditioning,
                                                    "noise_level": repr(trajectory.noise_level)})


def generate(state: EpisodeState, runtime: Runtime[RunContext]) -> dict:
    """`group_size` segments from the last accepted frame with the current instruction (batched where the
    backbone can), each recorded; the state carries them as candidates until the critic chooses one. A
    backbone that takes goals is also shown where the planner reads the movers should end (nodes/goal.py)."""
    ctx = NodeContext.of(state, runtime)
    settings, store = ctx.settings, ctx.artifacts
    step, ledger = ctx.step(state), ctx.ledger(state)
    generator = load_generator(settings.backbone, **settings.generator_options())
    try_index = len(state.attempts)
    group = settings.group_size
    seeds = [derive_seed(settings.seed, state.cursor, try_index, state.plan_version, k) for k in range(group)]
    frame = store.get_frame(ledger.last_frame)
    goal = goal_for(step, frame, ledger, ctx.reading.perceive) if backbone_info(settings.backbone).takes_goal else []
    request = SegmentRequest(image=frame, prompt=state.instruction, goal=goal,
                             num_frames=settings.num_frames, height=settings.height, width=settings.width,
                             num_inference_steps=settings.num_inference_steps, guidance_scale=settings.guidance_scale,
                             seed=seeds[0], trajectory=settings.trajectory, sde_noise_level=settings.sde_noise_level,
                             trajectory_dtype=settings.trajectory_dtype)

    def progress(done: int, steps: int) -> None:
        ctx.emit(GeneratorProgress(sub_action=state.cursor, try_index=try_index, step=done, steps=steps,
                                   backbone=settings.backbone))

    candidates = []
    for sample, segment in enumerate(generate_group(generator, request, seeds, progress)):
        thumbnail = thumbnail_jpeg(segment.frames[-1])
        candidate = Candidate(sample=sample, seed=segment.seed, segment=store.put_frames(segment.frames),
                              last_frame=store.put_frame(segment.frames[-1]),
                              thumbnail=store.put_bytes(thumbnail, "jpg", durable=False),
                              trajectory=save_trajectory(store, segment.trajectory) if segment.trajectory else "")
        candidates.append(candidate)
        ctx.emit(SegmentReady(sub_action=state.cursor, try_index=try_index, segment=candidate.segment,
                              thumbnail=data_url(thumbnail, "image/jpeg"), prompt=state.instruction,
                              seed=segment.seed, sample=sample))
        ctx.traces.record_attempt(AttemptRecord(
            thread_id=ctx.thread_id, plan_version=state.plan_version, sub_action_index=state.cursor,
            try_index=try_index, sample=sample, group_size=group, chosen=sample == 0, sub_action_id=step.id,
            verb=step.verb, movers=[m for m in (step.subject, step.partner) if m], postconditions=step.postconditions,
            prompt=state.instruction, flags=list(state.instruction_flags), seed=segment.seed,
            backbone=settings.backbone, conditioning_frame=ledger.last_frame, segment=candidate.segment,
            last_frame=candidate.last_frame, thumbnail=candidate.thumbnail, trajectory=candidate.trajectory,
            generate_s=round(segment.timings.get("generate_s", 0.0), 4)))
    first = candidates[0]
    attempt = Attempt(sub_action_index=state.cursor, try_index=try_index, plan_version=state.plan_version,
                      prompt=state.instruction, seed=first.seed, segment=first.segment, last_frame=first.last_frame,
                      thumbnail=first.thumbnail, trajectory=first.trajectory,
                      candidates=candidates if group > 1 else [])
    return {"attempts": attempt, "generator_calls": state.generator_calls + group}
