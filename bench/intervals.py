"""Uncertainty of a benchmark figure over tasks: bootstrap intervals and paired tests (scipy.stats).

The unit is the task: a method's score on a task is its mean over seeds, and intervals resample tasks,
because tasks (not seeds) are what a user's workload would draw differently. Two methods run on the same
tasks and seeds are compared task by task (paired), which removes the spread between easy and hard tasks.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel
from scipy import stats

RESAMPLES = 10_000
CONFIDENCE = 0.95


class Interval(BaseModel):
    """A mean with its 95 % bootstrap interval (percentile method, tasks resampled)."""

    mean: float
    low: float
    high: float
    n: int

    def text(self, scale: float = 1.0, digits: int = 1) -> str:
        return f"{scale * self.mean:.{digits}f} [{scale * self.low:.{digits}f}, {scale * self.high:.{digits}f}]"


class PairedDifference(Interval):
    """Mean of `a - b` over paired tasks, its bootstrap interval, and a two-sided sign-flip permutation test."""

    p_value: float

    def text(self, scale: float = 1.0, digits: int = 1) -> str:
        return (f"{scale * self.mean:+.{digits}f} [{scale * self.low:+.{digits}f}, {scale * self.high:+.{digits}f}], "
                f"p = {_p_text(self.p_value)}")


def _p_text(p: float) -> str:
    return f"{p:.2g}" if p < 0.1 else f"{p:.2f}"


def bootstrap_mean(values: list[float] | np.ndarray, seed: int = 0) -> Interval:
    """The mean of `values` (one per task) with its 95 % percentile-bootstrap interval.

    All-equal values (every task failed, say) give a zero-width interval: resampling cannot move them."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("no values to average")
    mean = float(data.mean())
    if data.size == 1 or np.all(data == data[0]):
        return Interval(mean=mean, low=mean, high=mean, n=int(data.size))
    res = stats.bootstrap((data,), np.mean, n_resamples=RESAMPLES, confidence_level=CONFIDENCE,
                          method="percentile", random_state=np.random.default_rng(seed))
    return Interval(mean=mean, low=float(res.confidence_interval.low), high=float(res.confidence_interval.high),
                    n=int(data.size))


def paired_difference(a: list[float] | np.ndarray, b: list[float] | np.ndarray, seed: int = 0) -> PairedDifference:
    """`a - b` task by task: its mean, 95 % bootstrap interval, and the p-value of a two-sided sign-flip
    permutation test (under no difference, each task's difference is as likely negated)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.size == 0:
        raise ValueError(f"paired values need the same tasks on both sides (got {x.size} and {y.size})")
    diff = x - y
    spread = bootstrap_mean(diff, seed)
    if np.all(diff == 0):
        p = 1.0
    else:
        test = stats.permutation_test((diff,), np.mean, permutation_type="samples", alternative="two-sided",
                                      n_resamples=RESAMPLES, random_state=np.random.default_rng(seed))
        p = float(test.pvalue)
    return PairedDifference(mean=spread.mean, low=spread.low, high=spread.high, n=spread.n, p_value=p)
