"""`spiral train loop`: rounds of collect (with the current adapter), train, evaluate on held-out tasks.

loop.csv has one row per policy: the base, then the adapter after each round,
with the optimizer steps it has had, the reward of the train rollouts
collected with it (none for the last: nothing collects with it) and its reward
on the held-out tasks (same tasks and seed every time). loop.png plots both
against steps. A round whose training reward rises while the held-out reward
falls is warned about.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..memory.checkpoints import database_uri
from ..tools.errors import InputError
from ..tools.video import clear_cache
from ..vocabulary.config import RunContext
from .collect import Progress, run_tasks
from .config import FitOptions, LoopOptions, TrainerSettings
from .fit import fit
from .loop_log import LoopRow, overfitting_warning, write_loop
from .replay import mean_reward


def run_loop(base: RunContext, options: LoopOptions, fit_options: FitOptions, config: TrainerSettings,
             say: Callable[[str], None] = print, progress: Progress = lambda items, label: items) -> list[LoopRow]:
    """The rounds into `base.workspace` (round-N/rollouts, round-N/<method>, round-N/eval); returns the policies."""
    root = Path(base.workspace)
    if database_uri():
        raise InputError("spiral train loop keeps each round's rollouts and evaluations in their own workspace, and "
                         "with SPIRAL_DATABASE_URI set every workspace's traces go to one database: unset it for the "
                         "loop, or run collect, grpo and the evaluation yourself")

    def collect(context: RunContext, split: str, size: int, prefix: str) -> None:
        done = run_tasks(context, split, size, prefix, progress)
        for line in done.failed:
            say(f"skipped {line}")

    def evaluate(folder: Path, adapter: Path | None) -> float | None:
        held_out = base.model_copy(update={"workspace": str(folder), "lora": str(adapter or ""), "group_size": 1,
                                           "trajectory": False, "seed": base.seed})
        collect(held_out, "test", options.eval_size, "eval")
        return mean_reward(folder, config.rewards, chosen_only=True)

    policies = [LoopRow(policy=0, optimizer_steps=0, heldout_reward=evaluate(root / "base-eval", None))]
    adapter: Path | None = None
    for r in range(options.rounds):
        folder = root / f"round-{r}"
        rollouts = base.model_copy(update={"workspace": str(folder / "rollouts"), "seed": base.seed + r,
                                           "lora": str(adapter or "")})
        collect(rollouts, "train", options.size, "collect")
        policies[-1].train_reward = mean_reward(folder / "rollouts", config.rewards, chosen_only=False)
        result = fit(options.method, folder / "rollouts", folder / options.method, config, fit_options.epochs,
                     init_adapter=adapter, progress=progress)
        adapter = result.adapter
        policies.append(LoopRow(policy=r + 1, optimizer_steps=policies[-1].optimizer_steps + result.optimizer_steps,
                                heldout_reward=evaluate(folder / "eval", adapter)))
        clear_cache()  # each round's adapter loaded its own pipeline: free them before the next round's
        warning = overfitting_warning(policies[-3], policies[-2]) if len(policies) > 2 else ""
        if warning:
            say(f"warning: round {r}: {warning}")
        write_loop(root, policies)
        say(f"round {r}: train reward {policies[-2].train_reward} (collected with policy {r}), held-out "
            f"{policies[-2].heldout_reward} -> {policies[-1].heldout_reward}; adapter {adapter}")
    return policies
