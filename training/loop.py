"""`spiral train loop`: rounds of collect (with the current adapter), train, evaluate on held-out tasks.

loop.csv has one row per policy: the base, then the adapter after each round,
with the optimizer steps it has had, the reward of the train rollouts
collected with it (none for the last: nothing collects with it) and its reward
on the held-out tasks (same tasks and seed every time). loop.png plots both
against steps. A round whose training reward rises while the held-out reward
falls is warned about. With `--segment-check N` (tabletop-tiny) every policy
is also run on the first N held-out single segments and scored twice, by the
critic and by the independent judge (bench/critic_agreement.py; the judge is
never a reward): a critic pass rate that rises while the judge's success does
not is warned about as reward hacking, and loop.png gets a second panel.
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
from .loop_log import LoopRow, hacking_warning, overfitting_warning, write_loop
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

    if options.segment_check and base.backbone != "tabletop-tiny":
        raise InputError(f"--segment-check judges tabletop-tiny's held-out segments against the world's truth; "
                         f"backbone {base.backbone} has none")

    def evaluate(folder: Path, adapter: Path | None, policy: int, steps: int) -> LoopRow:
        held_out = base.model_copy(update={"workspace": str(folder), "lora": str(adapter or ""), "group_size": 1,
                                           "trajectory": False, "seed": base.seed})
        collect(held_out, "test", options.eval_size, "eval")
        # the verifiable reward exists on train tasks only: a held-out task's truth is the evaluator's
        heldout = None if config.rewards.needs_truth() else mean_reward(folder, config.rewards, chosen_only=True)
        row = LoopRow(policy=policy, optimizer_steps=steps, heldout_reward=heldout)
        if options.segment_check:
            from ..bench.critic_agreement import segment_check

            check = segment_check(options.segment_check, base.model, str(adapter or ""))
            row.heldout_critic_pass, row.heldout_judge_right = check.critic_rate, check.judge_rate
        return row

    policies = [evaluate(root / "base-eval", None, 0, 0)]
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
        steps = policies[-1].optimizer_steps + result.optimizer_steps
        policies.append(evaluate(folder / "eval", adapter, r + 1, steps))
        clear_cache()  # each round's adapter loaded its own pipeline: free them before the next round's
        warnings = [overfitting_warning(policies[-3], policies[-2]) if len(policies) > 2 else "",
                    hacking_warning(policies[-2], policies[-1])]
        for warning in filter(None, warnings):
            say(f"warning: round {r}: {warning}")
        write_loop(root, policies)
        checked = "" if policies[-1].heldout_judge_right is None else (
            f"; held-out segments: critic passes {policies[-2].heldout_critic_pass:.3f} -> "
            f"{policies[-1].heldout_critic_pass:.3f}, judge right {policies[-2].heldout_judge_right:.3f} -> "
            f"{policies[-1].heldout_judge_right:.3f}")
        say(f"round {r}: train reward {policies[-2].train_reward} (collected with policy {r}), held-out "
            f"{policies[-2].heldout_reward} -> {policies[-1].heldout_reward}{checked}; adapter {adapter}")
    return policies
