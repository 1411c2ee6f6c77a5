"""Fault injection: `spiral demo` killed with -9, starved of disk, or stalled in a checkpoint write, at
every write it makes, then resumed; the result must equal an uninterrupted run's (tests/faults/).

The kill points are not sampled by sleeping: the harness counts the run's writes and breaks the
n-th one, for every n the uninterrupted run makes."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.faults.suite import (
    Reference,
    break_and_recover,
    demo_args,
    finish,
    harness,
    recover,
    reference_run,
    report,
)

pytestmark = pytest.mark.e2e
WORKERS = 2


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, Reference]:
    root = tmp_path_factory.mktemp("faults")
    return root, reference_run(root / "reference")


def run_points(root: Path, reference: Reference, points: list[str], title: str) -> None:
    with ThreadPoolExecutor(WORKERS) as pool:
        outcomes = list(pool.map(lambda p: break_and_recover(root, p, reference), points))
    text = report(title, outcomes)
    print(text)
    assert all(o.survived for o in outcomes), text
    assert sum(o.regenerated_accepted for o in outcomes) == 0


def test_the_reference_run_makes_every_kind_of_write(reference):
    _, ref = reference
    assert ref.counts["checkpoint"] >= 15 and ref.counts["writes"] >= 15
    assert ref.counts["trace"] >= 10 and ref.counts["artifact"] >= 10
    assert ref.generator_calls == 6 and ref.rows["attempts"] == 6


@pytest.mark.timeout(1200)  # minutes on a loaded 2-core machine
def test_kill_9_in_the_middle_of_every_write(reference):
    root, ref = reference
    points = [f"{kind}:{n}:kill" for kind in ("checkpoint", "writes", "trace", "artifact")
              for n in range(1, ref.counts[kind] + 1)]
    run_points(root, ref, points, "kill -9 mid-write")


def test_kill_9_at_every_node_boundary(reference):
    """Right after each checkpoint is committed: between one node and the next."""
    root, ref = reference
    assert ref.counts["put"] == ref.counts["checkpoint"]
    run_points(root, ref, [f"put:{n}:after" for n in range(1, ref.counts["put"] + 1)], "kill -9 at node boundaries")


def test_a_full_disk_at_each_kind_of_write_is_one_line_and_resumes(reference):
    root, ref = reference
    points = [f"{kind}:{n}:enospc" for kind in ("checkpoint", "writes", "trace", "artifact")
              for n in sorted({1, ref.counts[kind] // 2, ref.counts[kind]})]
    run_points(root, ref, points, "disk full (injected ENOSPC)")


def test_kill_9_during_a_slow_checkpoint_write(reference):
    root, ref = reference
    points = [f"checkpoint:{n}:slow" for n in sorted({2, ref.counts["checkpoint"] // 2, ref.counts["checkpoint"] - 1})]
    run_points(root, ref, points, "kill -9 during a slow checkpoint write")


def test_kill_9_while_lessons_are_written_with_reflective_memory(tmp_path_factory):
    """With `--memory reflective` the episode also writes lessons to the store (memory.sqlite) at its end:
    every one of those writes, and every trace write around them, is broken in turn."""
    root = tmp_path_factory.mktemp("faults-reflective")
    ref = reference_run(root / "reference", "--memory", "reflective")
    assert ref.counts["lessons"] >= 1 and ref.rows["store"] >= 1
    last_traces = range(max(1, ref.counts["trace"] - 3), ref.counts["trace"] + 1)
    points = [*(f"lessons:{n}:kill" for n in range(1, ref.counts["lessons"] + 1)),
              *(f"trace:{n}:kill" for n in last_traces), f"put:{ref.counts['put']}:after"]
    run_points(root, ref, points, "kill -9 with reflective memory")


def _mount_tmpfs(where: Path, size_kb: int) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(where)],
                          capture_output=True)
    return done.returncode == 0


def test_a_real_full_disk_then_more_space_resumes(reference):
    """On a size-limited tmpfs (where this machine lets us mount one): the run stops with one line
    when the disk fills, the space grows (remount), and the resume finishes the same episode."""
    root, ref = reference
    probe = root / "mount-probe"
    if os.geteuid() != 0 or not _mount_tmpfs(probe, 1024):
        pytest.skip("cannot mount a size-limited filesystem here; the injected-ENOSPC test covers this")
    subprocess.run(["umount", str(probe)], check=True)
    used_kb = sum(f.stat().st_size for f in (root / "reference").rglob("*") if f.is_file()) // 1024
    outcomes = []
    for share in (0.3, 0.6, 0.9):
        folder = root / f"tmpfs-{int(share * 100)}"
        assert _mount_tmpfs(folder, max(64, int(used_kb * share)))
        try:
            code, _, err = finish(harness(demo_args(folder), folder, log=folder / "fault.jsonl"))
            lines = [line for line in err.splitlines() if line.strip()]
            assert code == 1 and len(lines) == 1 and "disk holding" in lines[0], (share, code, lines[-3:])
            subprocess.run(["mount", "-o", f"remount,size={used_kb * 4}k", str(folder)], check=True)
            from tests.faults.suite import read_log
            outcomes.append(recover(folder, f"tmpfs at {share:.0%} of the run's size", ref,
                                    len(read_log(folder / "fault.jsonl")[1])))
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=False)
    text = report("disk full (size-limited tmpfs)", outcomes)
    print(text)
    assert all(o.survived for o in outcomes), text
