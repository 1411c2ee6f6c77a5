"""Online GRPO with a reward computed from pixels: sample groups with the current policy, score, train.

This is the trainer checked against itself (a reward anyone can compute, such
as brightness, and a learning-rate-0 control with the same seeds), and the
tiny CPU recipe's inner loop. Rollouts of SPIRAL's own loop come from the graph
instead (`spiral train collect`, training/replay.py); both end in
`FlowGRPO.train`.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..tools.video.base import SegmentRequest, generate_group
from .flow_grpo import FlowGRPO, ReplaySample
from .rewards import group_advantages


def fresh_seed(iteration: int, group: int, k: int) -> int:
    """Seeds for training samples; evaluation seeds are drawn from a disjoint range (>= 2**30)."""
    return (iteration * 1009 + group) * 64 + k


def sample_rewards(generator: Any, requests: Sequence[SegmentRequest], reward_fn: Callable[[np.ndarray], float],
                   seeds: Sequence[int]) -> list[float]:
    """Reward of a fresh SDE sample per (request, seed): what evaluation compares."""
    out = []
    for request in requests:
        for seed in seeds:
            segment = generator.generate(request.model_copy(update={"seed": seed, "trajectory": True}))
            out.append(reward_fn(segment.frames))
    return out


def online_grpo(generator: Any, trainer: FlowGRPO, requests: Sequence[SegmentRequest],
                reward_fn: Callable[[np.ndarray], float], group_size: int, iterations: int,
                progress: Callable[[int, dict], None] | None = None) -> list[dict[str, float]]:
    """`iterations` rounds of: G samples per request with the current weights, group advantages, one
    `trainer.train` pass. Resumes after the last saved round (`trainer.steps` optimizer steps)."""
    history = []
    per_round = trainer.steps_per_pass(len(requests) * group_size)
    for iteration in range(trainer.steps // per_round, iterations):
        groups, rewards = [], []
        for g, request in enumerate(requests):
            seeds = [fresh_seed(iteration, g, k) for k in range(group_size)]
            segments = generate_group(generator, request.model_copy(update={"trajectory": True}), seeds)
            groups.append(segments)
            rewards.append([reward_fn(s.frames) for s in segments])
        advantages = group_advantages(rewards)
        samples = [ReplaySample.from_trajectory(seg.trajectory, adv)
                   for g, values in zip(advantages.kept, advantages.values, strict=True)
                   for seg, adv in zip(groups[g], values, strict=True)]
        metrics = trainer.train(samples) if samples else {}
        row = {**metrics, "reward_mean": statistics.fmean(r for group in rewards for r in group),
               "groups_skipped_equal": float(advantages.skipped_equal)}
        trainer.log(row)
        history.append(row)
        if progress is not None:
            progress(iteration, row)
    return history
