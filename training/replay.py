"""Groups and preference pairs read back from a workspace's typed trace DB and artifact store.

A group is one try's `group_size` samples: same conditioning frame, same
instruction, different seeds (`spiral train collect` records them with
trajectories). Each sample's reward comes from its trace record
(training/rewards.py); GRPO takes every sample of a group whose rewards differ,
DPO its best and worst. Bad input stops here with one line saying what to do.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from ..memory.artifacts import ArtifactStore
from ..memory.checkpoints import database_uri
from ..memory.traces import AttemptRecord
from ..memory.workspace import Workspace
from ..tools.errors import InputError
from ..tools.video.policy import WanConditioning
from .dpo import PreferencePair
from .flow_grpo import ReplaySample
from .rewards import (
    Advantages,
    RewardInputs,
    RewardWeights,
    brightness,
    group_advantages,
    reward,
)
from .truth_reward import truth_verdicts


class Group(BaseModel):
    thread_id: str
    plan_version: int
    sub_action_index: int
    try_index: int
    samples: list[AttemptRecord]


class ReplayStats(BaseModel):
    groups: int = 0
    samples: int = 0
    unscored: int = 0
    """Samples without a reward (nobody judged them, or a weighted term was missing)."""
    skipped_equal: int = 0
    skipped_small: int = 0
    backbone: str = ""
    model: str = ""
    adapters: list[str] = []
    """The adapters the trained samples were drawn with (`path@sha256-prefix`; '' for the base weights)."""


def load_groups(workspace: str | Path) -> tuple[list[Group], str]:
    """Every recorded group of size > 1 with trajectories, and the backbone that sampled them."""
    space = Workspace.of(workspace)
    path = space.traces_path if not database_uri() else "the PostgreSQL traces"
    if not space.has_traces:
        raise InputError(f"no trace database in {workspace}: collect rollouts first (spiral train collect "
                         f"--workspace {workspace})")
    with space.reading_traces() as db:
        attempts = db.attempts()
    if not attempts:
        raise InputError(f"{path} holds no attempts: collect rollouts first (spiral train collect)")
    if not any(a.trajectory for a in attempts):
        raise InputError(f"{path} holds no trajectories: collect with trajectories on (spiral train collect records "
                         "them; spiral run needs --trajectory)")
    groups: dict[tuple, Group] = {}
    for a in attempts:
        if a.trajectory:
            key = (a.thread_id, a.plan_version, a.sub_action_index, a.try_index)
            groups.setdefault(key, Group(thread_id=a.thread_id, plan_version=a.plan_version,
                                         sub_action_index=a.sub_action_index, try_index=a.try_index, samples=[]))
            groups[key].samples.append(a)
    usable = [g for g in groups.values() if len(g.samples) > 1]
    if not usable:
        raise InputError(f"every group in {path} has one sample, and GRPO learns from differences within a group: "
                         "collect with --group 2 or more")
    backbones = {s.backbone for g in usable for s in g.samples}
    if len(backbones) > 1:
        raise InputError(f"{path} mixes backbones ({', '.join(sorted(backbones))}): train on one workspace per backbone")
    return usable, backbones.pop()


def _rewards(samples: list[AttemptRecord], workspace: str | Path, weights: RewardWeights,
             truth: dict | None = None) -> list[float | None]:
    """`truth`: the workspace's truth verdicts when the caller has read them already (once for all groups)."""
    store = Workspace.of(workspace).artifacts
    if truth is None:
        truth = truth_verdicts(workspace) if weights.needs_truth() else {}
    out = []
    for s in samples:
        mean = brightness(store.get_frame(s.last_frame)) if weights.needs_pixels() else None
        verdict = truth.get(s.key_of)
        out.append(reward(RewardInputs(judged=s.judged, passed=s.passed, scores=s.scores, evidence=s.evidence,
                                       last_frame_mean=mean, truth=verdict.terms() if verdict else {}), weights))
    return out


def _scored(groups: list[Group], workspace: str | Path, weights: RewardWeights,
            stats: ReplayStats) -> tuple[list[list[AttemptRecord]], list[list[float]]]:
    kept_samples, kept_rewards = [], []
    truth = truth_verdicts(workspace) if weights.needs_truth() else {}
    for group in groups:
        pairs = [(s, r) for s, r in zip(group.samples, _rewards(group.samples, workspace, weights, truth), strict=True)
                 if r is not None]
        stats.unscored += len(group.samples) - len(pairs)
        kept_samples.append([s for s, _ in pairs])
        kept_rewards.append([r for _, r in pairs])
    return kept_samples, kept_rewards


def mean_reward(workspace: str | Path, weights: RewardWeights, chosen_only: bool) -> float | None:
    """Mean reward of a workspace's scored attempts (the ones each try went on with, or every sample)."""
    space = Workspace.of(workspace)
    if not space.has_traces:
        return None
    with space.reading_traces() as db:
        records = [a for a in db.attempts() if a.chosen or not chosen_only]
    values = [r for r in _rewards(records, workspace, weights) if r is not None]
    return sum(values) / len(values) if values else None


class _Conditionings:
    """Conditionings by artifact ref, each read once: a group's samples share one (content-addressed)."""

    def __init__(self, store: ArtifactStore) -> None:
        self.store, self.seen = store, {}

    def __call__(self, ref: str) -> WanConditioning:
        if ref not in self.seen:
            tensors, metadata = self.store.get_tensors(ref)
            self.seen[ref] = WanConditioning.from_tensors(tensors, metadata)
        return self.seen[ref]


def grpo_samples(workspace: str | Path, weights: RewardWeights) -> tuple[list[ReplaySample], ReplayStats]:
    """Replay samples with group-normalised advantages; groups whose rewards are all equal are counted out."""
    groups, backbone = load_groups(workspace)
    store = Workspace.of(workspace).artifacts
    stats = ReplayStats(groups=len(groups), backbone=backbone)
    samples_by_group, rewards = _scored(groups, workspace, weights, stats)
    advantages: Advantages = group_advantages(rewards)
    conditioning = _Conditionings(store)
    stats.skipped_equal, stats.skipped_small = advantages.skipped_equal, advantages.skipped_small
    out = []
    for index, values in zip(advantages.kept, advantages.values, strict=True):
        for record, advantage in zip(samples_by_group[index], values, strict=True):
            tensors, metadata = store.get_tensors(record.trajectory)
            stats.model = metadata.get("model", "")
            if metadata.get("adapter", "") not in stats.adapters:
                stats.adapters.append(metadata.get("adapter", ""))
            out.append(ReplaySample.from_artifacts(tensors, metadata, conditioning(metadata["conditioning"]), advantage))
    stats.samples = len(out)
    if not out:
        raise InputError(f"no group in {workspace} has samples with different rewards ({stats.skipped_equal} groups "
                         f"all equal, {stats.unscored} samples unscored): collect more, or larger groups")
    return out, stats


def dpo_pairs(workspace: str | Path, weights: RewardWeights,
              pairs_from: str = "group") -> tuple[list[PreferencePair], ReplayStats]:
    """The best and the worst sample of every group whose rewards differ (`group`), or the loop's refinement
    pairs (`refinement`, see `refinement_pairs`)."""
    if pairs_from == "refinement":
        return refinement_pairs(workspace)
    groups, backbone = load_groups(workspace)
    store = Workspace.of(workspace).artifacts
    stats = ReplayStats(groups=len(groups), backbone=backbone)
    samples_by_group, rewards = _scored(groups, workspace, weights, stats)
    pairs, conditioning = [], _Conditionings(store)
    for samples, values in zip(samples_by_group, rewards, strict=True):
        if len(samples) < 2:
            stats.skipped_small += 1
            continue
        best = max(range(len(values)), key=lambda i: (values[i], -i))
        worst = min(range(len(values)), key=lambda i: (values[i], i))
        if values[best] == values[worst]:
            stats.skipped_equal += 1
            continue
        tensors_w, meta_w = store.get_tensors(samples[best].trajectory)
        tensors_l, _ = store.get_tensors(samples[worst].trajectory)
        stats.model = meta_w.get("model", "")
        pairs.append(PreferencePair(tensors_w["latents"][-1].float(), tensors_l["latents"][-1].float(),
                                    conditioning(meta_w["conditioning"]), values[best] - values[worst]))
    stats.samples = 2 * len(pairs)
    if not pairs:
        raise InputError(f"no group in {workspace} has samples with different rewards: collect more, or larger groups")
    return pairs, stats


def refinement_pairs(workspace: str | Path) -> tuple[list[PreferencePair], ReplayStats]:
    """What the loop's refinements teach: for each sub-action the loop accepted on a retry, the accepted sample
    preferred to the sample each rejected earlier try went on with, when both started from the same frame.

    The pair is conditioned on the rejected try's instruction (the sub-action's own, before any rewording), so
    the generator learns to do from the plain instruction what the refined one got it to do. Needs trajectories
    (for the final latents) but no reward: the critic's verdicts made the pairs."""
    space = Workspace.of(workspace)
    if not space.has_traces:
        raise InputError(f"no trace database in {workspace}: collect rollouts first (spiral train collect)")
    with space.reading_traces() as db:
        attempts = [a for a in db.attempts() if a.trajectory and a.judged]
    by_sub: dict[tuple, list[AttemptRecord]] = {}
    for a in attempts:
        by_sub.setdefault((a.thread_id, a.plan_version, a.sub_action_index), []).append(a)
    store, conditioning = space.artifacts, _Conditionings(space.artifacts)
    stats = ReplayStats(groups=len(by_sub), backbone=next(iter({a.backbone for a in attempts}), ""))
    pairs = []
    for tries in by_sub.values():
        accepted = [a for a in tries if a.passed and a.chosen]
        if not accepted:
            continue
        winner = accepted[0]
        rejected = [a for a in tries if a.try_index < winner.try_index and a.chosen and not a.passed
                    and a.conditioning_frame == winner.conditioning_frame]
        if not rejected:
            continue
        tensors_w, meta_w = store.get_tensors(winner.trajectory)
        stats.model = meta_w.get("model", "")
        for loser in rejected:
            tensors_l, meta_l = store.get_tensors(loser.trajectory)
            pairs.append(PreferencePair(tensors_w["latents"][-1].float(), tensors_l["latents"][-1].float(),
                                        conditioning(meta_l["conditioning"]), 1.0))
    stats.samples = 2 * len(pairs)
    if not pairs:
        raise InputError(f"no sub-action in {workspace} was accepted on a retry from the frame its rejected try "
                         "started from: collect more episodes (refinement pairs need a failure, then a success)")
    return pairs, stats
