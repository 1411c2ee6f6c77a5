"""One metrics writer for every trainer: rows to metrics.csv (rewritten whole and atomically) and curves.png.

Pre-training and the RL trainers log the same way, so a run folder reads the
same whatever made it. A resumed run first forgets the rows logged after the
state it resumes from (they are logged again). Plotting costs more than a GPU
step, so callers plot at saved states only.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path


class MetricsLog:
    """`metrics.csv` and `curves.png` in `folder` (rows there already are read back: a run resumes them)."""

    def __init__(self, folder: Path, x_label: str = "step", log_scale: bool = False) -> None:
        self.path, self.plot_path = folder / "metrics.csv", folder / "curves.png"
        self.x_label, self.log_scale = x_label, log_scale
        self.rows: list[dict[str, float]] = []
        if self.path.exists():
            with self.path.open() as fh:
                self.rows = [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(fh)]

    def forget_after(self, step: int, stage: int | None = None) -> None:
        """Drop the rows logged after `step` (of `stage`, when rows carry one)."""
        self.rows = [r for r in self.rows if stage is not None and r.get("stage") != stage or r["step"] <= step]

    def add(self, row: dict[str, float]) -> None:
        self.rows.append({k: float(v) for k, v in row.items()})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(".metrics.partial.csv")
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self._fields())
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, self.path)

    def _fields(self) -> list[str]:
        return list(dict.fromkeys(k for r in self.rows for k in r))

    def plot(self) -> None:
        """curves.png: one panel per quantity against the step."""
        names = [f for f in self._fields() if f not in ("stage", "step")]
        if not names:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(len(names), 1, figsize=(6, 1.8 * len(names)), squeeze=False)
        for ax, name in zip(axes[:, 0], names, strict=True):
            points = [(r["step"], r[name]) for r in self.rows if name in r]
            ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", markersize=3)
            ax.set_ylabel(name, fontsize=8)
            if self.log_scale and all(p[1] > 0 for p in points):
                ax.set_yscale("log")
        axes[-1, 0].set_xlabel(self.x_label)
        fig.tight_layout()
        fig.savefig(self.plot_path, dpi=80)
        plt.close(fig)
