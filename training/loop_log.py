"""What `spiral train loop` records per policy: loop.csv and loop.png (reward against optimizer steps).

One row per policy (the base, then the adapter after each round) so that a
train and a held-out reward on the same row were measured with the same
weights; the train reward of round r's rollouts belongs to the policy that
collected them, not to the one trained on them.
"""

from __future__ import annotations

import csv
from pathlib import Path

from pydantic import BaseModel


class LoopRow(BaseModel):
    """One policy of the loop: the base (0) or the adapter after round `policy - 1`."""

    policy: int
    optimizer_steps: int
    """Optimizer steps this policy has had, all rounds together."""
    train_reward: float | None = None
    """Mean reward of the train rollouts collected with this policy (none for the last: nothing collects with it)."""
    heldout_reward: float | None = None
    """Mean reward of the attempts each held-out episode went on with (same tasks and seed every time)."""
    heldout_critic_pass: float | None = None
    """`--segment-check`: the critic's pass rate on held-out single segments (the same ones every time)."""
    heldout_judge_right: float | None = None
    """`--segment-check`: the independent judge's success on the same segments."""


def hacking_warning(previous: LoopRow, row: LoopRow) -> str:
    """What to say when the critic passed more held-out segments while the judge found no more right (empty:
    nothing): the generator learned what fools the critic, not the skill."""
    rates = (previous.heldout_critic_pass, previous.heldout_judge_right, row.heldout_critic_pass,
             row.heldout_judge_right)
    if any(r is None for r in rates):
        return ""
    critic_before, judge_before, critic_now, judge_now = rates
    if critic_now > critic_before and judge_now <= judge_before:  # type: ignore[operator]
        return (f"reward hacking: the critic's pass rate on held-out segments rose ({critic_before:.3f} -> "
                f"{critic_now:.3f}) while the judge's success did not ({judge_before:.3f} -> {judge_now:.3f})")
    return ""


def overfitting_warning(previous: LoopRow, row: LoopRow) -> str:
    """What to say when the training reward rose while the held-out reward fell (empty: nothing)."""
    if row.train_reward is None or row.heldout_reward is None or previous.train_reward is None \
            or previous.heldout_reward is None:
        return ""
    if row.train_reward > previous.train_reward and row.heldout_reward < previous.heldout_reward:
        return (f"the training reward rose ({previous.train_reward:.4f} -> {row.train_reward:.4f}) while the "
                f"held-out reward fell ({previous.heldout_reward:.4f} -> {row.heldout_reward:.4f}): is the "
                "generator learning the critic or the training tasks rather than the skill?")
    return ""


def write_loop(root: Path, policies: list[LoopRow]) -> None:
    """loop.csv (rewritten whole each round, so a crash leaves the last complete table) and loop.png."""
    with (root / "loop.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(LoopRow.model_fields))
        writer.writeheader()
        writer.writerows(row.model_dump() for row in policies)
    plot_loop(root / "loop.png", policies)


def read_loop(path: Path) -> list[LoopRow]:
    with path.open() as fh:
        return [LoopRow.model_validate({k: (v if v != "" else None) for k, v in row.items()})
                for row in csv.DictReader(fh)]


def plot_loop(path: Path, policies: list[LoopRow]) -> None:
    """Train and held-out reward per policy, against the optimizer steps it has had."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    checked = any(row.heldout_judge_right is not None for row in policies)
    fig, axes = plt.subplots(1, 2 if checked else 1, figsize=(11 if checked else 5.5, 3.2), squeeze=False)
    ax = axes[0][0]
    if checked:
        _plot_rates(axes[0][1], policies)
    for name, label in (("train_reward", "train rollouts"), ("heldout_reward", "held-out tasks")):
        points = [(row.optimizer_steps, getattr(row, name)) for row in policies if getattr(row, name) is not None]
        ax.plot([x for x, _ in points], [y for _, y in points], marker="o", label=label)
        for (x, y), row in zip(points, [r for r in policies if getattr(r, name) is not None], strict=True):
            ax.annotate(str(row.policy), (x, y), textcoords="offset points", xytext=(3, 3), fontsize=7)
    ax.set_xlabel("optimizer steps (label: policy, 0 = base)")
    ax.set_ylabel("mean reward")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_rates(ax, policies: list[LoopRow]) -> None:
    """The critic's pass rate and the judge's success on the held-out segments, per policy."""
    for name, label in (("heldout_critic_pass", "critic passes"), ("heldout_judge_right", "judge: right")):
        points = [(row.optimizer_steps, getattr(row, name)) for row in policies if getattr(row, name) is not None]
        ax.plot([x for x, _ in points], [y for _, y in points], marker="o", label=label)
    ax.set_xlabel("optimizer steps")
    ax.set_ylabel("share of held-out segments")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
