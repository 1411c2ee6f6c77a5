"""Named rewards, combined by weights, and group-relative advantages (GRPO).

A sample's reward is a weighted sum of named terms read from its trace record:
`success` (the judged verdict: 1 pass, 0 fail), `score:NAME` (the critic's
scores: action_completion, object_fidelity, temporal_consistency,
physical_plausibility, in [0, 1]) and `evidence:NAME` (the critic's dense
measurements, e.g. `evidence:max_jump`; give those a negative weight) and
`truth:NAME` (the verifiable reward, train-split rollouts only: the judge's
verdict against the ground-truth executor, training/truth_reward.py:
`truth:success`, `truth:max_error`, `truth:wrong`). An
attempt nobody judged has no reward: it is left out and counted, never scored
as a pass. A term the record lacks (the critic measures no goal distance when
the subject vanished) leaves the sample unscored unless `missing` gives the
value to use instead: the worst case, so the commonest failure still teaches.
`brightness` (the mean of the last frame, in [0, 1]) is computed from
pixels, for recipes that check the trainer itself.

Advantages are normalised per group (same conditioning frame and instruction):
(r - mean) / (std + eps). A group whose rewards are all equal teaches nothing
and is skipped (and counted).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCORES = ("action_completion", "object_fidelity", "temporal_consistency", "physical_plausibility")
TRUTH_TERMS = ("success", "max_error", "wrong")
"""The verifiable reward's terms (training/truth_reward.py)."""


class RewardWeights(BaseModel):
    """Weights of named reward terms; unknown names and non-finite numbers are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    weights: dict[str, float] = Field(default_factory=lambda: {"success": 1.0, "score:action_completion": 0.5})
    missing: dict[str, float] = Field(default_factory=dict)
    """The value a weighted term takes when a judged record lacks it (e.g. evidence:goal_distance=100)."""

    @field_validator("weights")
    @classmethod
    def _known(cls, weights: dict[str, float]) -> dict[str, float]:
        for name in weights:
            kind, _, rest = name.partition(":")
            ok = name in ("success", "brightness") or (kind == "score" and rest in SCORES) or (kind == "evidence" and rest) \
                or (kind == "truth" and rest in TRUTH_TERMS)
            if not ok:
                raise ValueError(f"unknown reward {name!r}: use success, brightness, score:<{'|'.join(SCORES)}>, "
                                 f"evidence:<name> or truth:<{'|'.join(TRUTH_TERMS)}>")
        if not weights:
            raise ValueError("no reward terms: give at least one weight")
        return weights

    @model_validator(mode="after")
    def _missing_is_weighted(self) -> RewardWeights:
        for name in self.missing:
            if name not in self.weights:
                raise ValueError(f"a value for a missing {name!r} but no weight for it: add --reward {name}=WEIGHT")
            if name in ("success", "brightness"):
                raise ValueError(f"{name!r} is never missing from a judged record: no value for it is needed")
        return self

    def needs_pixels(self) -> bool:
        return "brightness" in self.weights

    def needs_verdict(self) -> bool:
        return any(name != "brightness" for name in self.weights)

    def needs_truth(self) -> bool:
        return any(name.startswith("truth:") for name in self.weights)


class RewardInputs(BaseModel):
    """What a reward is computed from: one attempt's verdict and, when asked, its last frame."""

    judged: bool
    passed: bool | None = None
    scores: dict[str, float] = Field(default_factory=dict)
    evidence: dict[str, float | str] = Field(default_factory=dict)
    last_frame_mean: float | None = None
    """Mean pixel of the last frame in [0, 1] (only when a weight asks for brightness)."""
    truth: dict[str, float] = Field(default_factory=dict)
    """The verifiable reward's terms (only when a weight asks for truth; empty when the executor could not
    carry the sub-action out from where the segment started)."""


def reward(inputs: RewardInputs, weights: RewardWeights) -> float | None:
    """The weighted sum, or None when the sample cannot be scored (unjudged, a term missing)."""
    total = 0.0
    for name, weight in weights.weights.items():
        kind, _, rest = name.partition(":")
        if name == "brightness":
            value = inputs.last_frame_mean
        elif kind == "truth":
            value = inputs.truth.get(rest)
        elif not inputs.judged:
            return None
        elif name == "success":
            value = 1.0 if inputs.passed else 0.0
        elif kind == "score":
            value = inputs.scores.get(rest)
        else:
            raw = inputs.evidence.get(rest)
            value = raw if isinstance(raw, float | int) else None
        if value is None and name in weights.missing and (inputs.judged or kind == "truth"):
            value = weights.missing[name]
        if value is None:
            return None
        total += weight * float(value)
    return total


def brightness(frame: np.ndarray) -> float:
    return float(np.asarray(frame, dtype=np.float64).mean() / 255.0)


class Advantages(BaseModel):
    """Per-sample advantages of the groups that teach something, and what was skipped."""

    values: list[list[float]]
    """One list per kept group, aligned with its samples."""
    kept: list[int]
    """Indices of the kept groups."""
    skipped_equal: int = 0
    """Groups whose rewards were all equal."""
    skipped_small: int = 0
    """Groups with fewer than two scored samples."""


def group_advantages(groups: Sequence[Sequence[float]], eps: float = 1e-4) -> Advantages:
    """(r - mean) / (std + eps) within each group; equal-reward and one-sample groups skipped."""
    out = Advantages(values=[], kept=[])
    for index, rewards in enumerate(groups):
        if len(rewards) < 2:
            out.skipped_small += 1
            continue
        arr = np.asarray(rewards, dtype=np.float64)
        std = float(arr.std())
        if std == 0.0 or math.isclose(float(arr.max()), float(arr.min())):
            out.skipped_equal += 1
            continue
        out.values.append([float(v) for v in (arr - arr.mean()) / (std + eps)])
        out.kept.append(index)
    return out


RewardFn = Callable[[np.ndarray], float]
"""A reward computed from a segment's frames (T, H, W, 3) uint8: for online training without a critic."""
