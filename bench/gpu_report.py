"""The GPU bench's report: runs merged and rendered as docs/benchmarks.md's section (bench/gpu.py measures)."""

from __future__ import annotations


def merge(reports: list[dict]) -> dict:
    """Several runs' reports as one (a later run that measured what an earlier one did not)."""
    merged = dict(reports[0], results=[r for report in reports for r in report["results"]],
                  built={k: v for report in reports for k, v in report.get("built", {}).items()},
                  wall_s=sum(report.get("wall_s", 0.0) for report in reports), runs=len(reports))
    if len({report["device"] for report in reports}) > 1:
        raise ValueError("these reports come from different cards; render them separately")
    return merged


def _gb(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f}"


def render(report: dict, command: str) -> str:
    """The docs/benchmarks.md section for one report (`--render`)."""
    built = report["built"]
    lines = [f"### Real-size backbones on one {report['device']} (random weights)", "```bash", command, "```",
             f"torch {report['torch']}, diffusers {report['diffusers']}, bf16 (float32 norms and time embedding, as "
             "`from_pretrained` keeps them), no offload, guidance 5.0, one segment per call. Each pipeline is built "
             "from its published configs with random weights (`bench/gpu_models.py`): real shapes and compute, "
             "noise for frames. " + (f"{report['runs']} runs, {report['wall_s']:.0f} s in all." if report.get("runs", 1) > 1
                                   else f"Whole run: {report['wall_s']:.0f} s."), "",
             "| backbone | parameters (B) | built in s |", "| --- | --- | --- |"]
    for name, b in built.items():
        parts = ", ".join(f"{k} {v:.2f}" for k, v in b["params_b"].items())
        lines.append(f"| `{name}` | {parts} | {b['s']:.1f} |")
    lines += ["", "Generating one segment: the bare diffusers call (prompt as text) against SPIRAL's generator tool "
              "(`DiffusersBackbone.generate`, prompt embeddings cached after the first call), same seed:", "",
              "| backbone | size | steps | s / step | bare s | tool s (first / cached) | peak VRAM GB (bare / tool) "
              "| max frame diff bare vs tool | bare vs bare again |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in report["results"]:
        if r["what"] != "generate" or "error" in r or "skipped" in r:
            continue
        lines.append(f"| `{r['backbone']}` | {r['width']}x{r['height']}x{r['frames']} | {r['steps']} | "
                     f"{r['bare_s_per_step']:.2f} | {r['bare_s']:.2f} | {r['tool_s']:.2f} / {r['tool_cached_s']:.2f} | "
                     f"{_gb(r['bare_peak_gb'])} / {_gb(r['tool_peak_gb'])} | {r['max_frame_diff']} | "
                     f"{r.get('bare_repeat_diff', '–')} |")
    for r in report["results"]:
        if r["what"] == "group" and "error" not in r and "skipped" not in r:
            lines += ["", f"A group of {r['group']} with trajectories on `{r['backbone']}` at {r['width']}x"
                      f"{r['height']}x{r['frames']}, {r['steps']} steps: {r['alone_s']:.2f} s a sample one after "
                      f"another ({_gb(r['alone_peak_gb'])} GB), {r['batched_s']:.2f} s a sample in one batched call "
                      f"(`generate_group`, {_gb(r['batched_peak_gb'])} GB)."]
        if r["what"] == "trajectory" and "error" not in r and "skipped" not in r:
            lines += ["", f"Trajectory capture (`--trajectory`, Euler SDE steps with log-probs) on `{r['backbone']}` at "
                      f"{r['width']}x{r['height']}x{r['frames']}, {r['steps']} steps: {r['trajectory_s']:.2f} s against "
                      f"{r['plain_s']:.2f} s without, {_gb(r['trajectory_peak_gb'])} GB peak, "
                      f"{r['trajectory_mb']:.1f} MB recorded per segment (float32)."]
        if r["what"] == "grpo_step" and "error" not in r and "skipped" not in r:
            lines += ["", f"The one-GPU GRPO recipe (`wan-1gpu`) on `{r['backbone']}` at {r['width']}x{r['height']}"
                      f"x{r['frames']} ({r['tokens']} tokens), through the trainer itself (`FlowGRPO.train`): a group "
                      f"of {r['group']} sampled with trajectories ({r['steps']} steps, guidance 5) at "
                      f"{r['sample_s']:.2f} s a sample, then one optimizer step over the group: "
                      f"{r['transitions']} transitions (60 % of the steps), each the guided output recomputed "
                      "(one batched forward for both halves), the KL reference (adapter off), backward with "
                      f"gradient checkpointing under bf16 autocast: {r['optimizer_step_s']:.1f} s a step "
                      f"({r['s_per_transition']:.2f} s a transition; the first step {r['first_step_s']:.1f} s), "
                      f"{_gb(r['peak_gb'])} GB peak, {r['lora_params_m']:.1f} M trainable parameters (rank 32)."]
    for r in report["results"]:
        if "error" in r or "skipped" in r:
            lines.append(f"\nNot measured: `{r['backbone']}` {r['what']}: {r.get('error') or r.get('skipped')}.")
    return "\n".join(lines) + "\n"
