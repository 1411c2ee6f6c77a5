"""Tables and plots from the results table: mean ± std over seeds, written to docs/."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from .episodes import METHODS, EpisodeResult
from .metrics import precision_recall_counts

COLUMNS = [
    ("success", "success", 100), ("completion", "completion", 100), ("fidelity", "fidelity", 100),
    ("temporal", "temporal", 100), ("subject_consistency", "subj. cons.", 100),
    ("background_consistency", "bg cons.", 100), ("motion_smoothness", "smooth", 100), ("flicker", "flicker", 100),
    ("generator_calls", "gen. calls", 1), ("wall_s", "wall s", 1),
]


def _per_seed(rows: list[EpisodeResult], field: str) -> list[float]:
    by_seed: dict[int, list[float]] = defaultdict(list)
    for r in rows:
        by_seed[r.seed].append(float(getattr(r, field)))
    return [float(np.mean(v)) for _, v in sorted(by_seed.items())]


def mean_std(rows: list[EpisodeResult], field: str, scale: float = 1.0) -> str:
    """Mean over tasks within a seed, then mean ± std (population) over seeds."""
    vals = np.asarray(_per_seed(rows, field)) * scale
    if vals.size == 0:
        return "–"
    digits = 1 if scale == 100 else 2
    return f"{vals.mean():.{digits}f} ± {vals.std():.{digits}f}"


def methods_in(rows: list[EpisodeResult]) -> list[str]:
    present = {r.method for r in rows}
    return [m for m in METHODS if m in present]


def main_table(rows: list[EpisodeResult]) -> str:
    head = "| method | " + " | ".join(label for _, label, _ in COLUMNS) + " |"
    lines = [head, "|" + " --- |" * (len(COLUMNS) + 1)]
    for m in methods_in(rows):
        mine = [r for r in rows if r.method == m]
        lines.append(f"| {m} | " + " | ".join(mean_std(mine, f, s) for f, _, s in COLUMNS) + " |")
    return "\n".join(lines)


def by_category_table(rows: list[EpisodeResult]) -> str:
    cats = sorted({r.category for r in rows},
                  key=lambda c: (np.mean([r.horizon for r in rows if r.category == c]), c))
    lines = ["| method | " + " | ".join(cats) + " |", "|" + " --- |" * (len(cats) + 1)]
    for m in methods_in(rows):
        cells = [mean_std([r for r in rows if r.method == m and r.category == c], "success", 100) for c in cats]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def critic_table(rows: list[EpisodeResult]) -> str:
    lines = ["| method | attempts judged | precision | recall | accuracy |", "| --- | --- | --- | --- | --- |"]
    for m in methods_in(rows):
        mine = [r for r in rows if r.method == m]
        tp, fp = sum(r.critic_tp for r in mine), sum(r.critic_fp for r in mine)
        fn, tn = sum(r.critic_fn for r in mine), sum(r.critic_tn for r in mine)
        n = tp + fp + fn + tn
        if n == 0:
            continue
        prec, rec = precision_recall_counts(tp, fp, fn)
        lines.append(f"| {m} | {n} | {prec:.3f} | {rec:.3f} | {(tp + tn) / n:.3f} |")
    return "\n".join(lines)


def overhead_table(rows: list[EpisodeResult]) -> str:
    lines = ["| method | wall s / episode | generator s / episode | orchestration share | ms per generator call outside the generator |",
             "| --- | --- | --- | --- | --- |"]
    for m in methods_in(rows):
        mine = [r for r in rows if r.method == m]
        wall = sum(r.wall_s for r in mine)
        gen = sum(r.generator_s for r in mine)
        calls = sum(r.generator_calls for r in mine)
        lines.append(f"| {m} | {wall / len(mine):.3f} | {gen / len(mine):.3f} | {100 * (wall - gen) / wall:.0f} % | "
                     f"{1000 * (wall - gen) / max(calls, 1):.0f} |")
    return "\n".join(lines)


def plots(rows: list[EpisodeResult], img_dir: Path, stem: str) -> list[Path]:
    """success vs horizon per method; success vs mean generator calls."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    fig, ax = plt.subplots(figsize=(6, 4))
    horizons = sorted({r.horizon for r in rows})
    for m in methods_in(rows):
        ys = [np.mean([r.success for r in rows if r.method == m and r.horizon == h]) * 100 for h in horizons]
        ax.plot(horizons, ys, marker="o", label=m)
    ax.set_xlabel("horizon (object motions in the task)")
    ax.set_ylabel("success rate (%)")
    ax.set_ylim(-5, 105)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(img_dir / f"{stem}_success_vs_horizon.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    for m in methods_in(rows):
        mine = [r for r in rows if r.method == m]
        ax.scatter(np.mean([r.generator_calls for r in mine]), np.mean([r.success for r in mine]) * 100, s=60)
        ax.annotate(m, (np.mean([r.generator_calls for r in mine]), np.mean([r.success for r in mine]) * 100),
                    textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel("mean generator calls per episode")
    ax.set_ylabel("success rate (%)")
    ax.set_ylim(-5, 105)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths.append(img_dir / f"{stem}_success_vs_calls.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def section(rows: list[EpisodeResult], command: str, images: list[Path], docs_dir: Path, wall_minutes: float | None) -> str:
    n_tasks = len({r.task_id for r in rows})
    seeds = sorted({r.seed for r in rows})
    lines = [
        f"### ActWM-Sim `{rows[0].suite}`, split `{rows[0].split}`, difficulty `{rows[0].difficulty}`",
        "",
        "```bash", command, "```", "",
        f"{n_tasks} tasks × {len(seeds)} seeds; mean over tasks per seed, then mean ± std over seeds. "
        "Backbone: the `sim` simulator (not a neural video model). Percentages except calls and wall time."
        + (f" Whole run: {wall_minutes:.1f} min." if wall_minutes is not None else ""),
        "", main_table(rows), "", "Success rate by task category (mean horizon grows left to right):", "",
        by_category_table(rows), "", "Critic accuracy against ground truth (every judged attempt):", "",
        critic_table(rows), "", "Where the time goes (the sim renders a segment in ~20 ms; a real backbone takes seconds):",
        "", overhead_table(rows), "",
    ]
    for p in images:
        lines.append(f"![{p.stem}]({p.relative_to(docs_dir).as_posix()})")
    return "\n".join(lines) + "\n"


def write_section(doc: Path, marker: str, text: str) -> None:
    """Replace (or append) the block between `<!-- marker:start -->` and `<!-- marker:end -->`."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    body = doc.read_text() if doc.exists() else "# Benchmarks\n\nEvery figure below comes with the command that produced it.\n"
    block = f"{start}\n{text}{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    body = pattern.sub(lambda _: block, body) if pattern.search(body) else body.rstrip() + "\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(body)
