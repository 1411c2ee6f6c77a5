"""The `spiral` command as a user runs it: subprocesses, files on disk."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.e2e


def spiral(*args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spiral.shell.cli", *args], capture_output=True, text=True,
                          timeout=timeout, **kw)


def test_demo_meets_its_promises(tmp_path):
    start = time.perf_counter()
    res = spiral("demo", "--out", str(tmp_path / "out"), "--workspace", str(tmp_path / "ws"))
    elapsed = time.perf_counter() - start
    assert res.returncode == 0, res.stderr
    assert elapsed < 60
    out = tmp_path / "out"
    for name in ("video.mp4", "video.gif", "summary.json", "start.png", "frames.npy"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["plan"]) >= 3
    failed = {(a["sub_action"], a["plan_version"]) for a in summary["attempts"] if not a["passed"]}
    refined = [a for a in summary["attempts"] if a["try"] > 0 and (a["sub_action"], a["plan_version"]) in failed]
    assert refined, "the demo should show at least one failed-then-refined segment"
    assert "SIMULATED" in res.stdout and "generator calls" in res.stdout
    assert "WARNING" not in res.stderr


def test_same_seed_gives_identical_summary_and_frames(tmp_path):
    outs = []
    for i in range(2):
        res = spiral("demo", "--seed", "7", "--out", str(tmp_path / f"o{i}"), "--workspace", str(tmp_path / f"w{i}"))
        assert res.returncode == 0, res.stderr
        outs.append(tmp_path / f"o{i}")
    assert json.loads((outs[0] / "summary.json").read_text())["status"] == "done"
    assert (outs[0] / "summary.json").read_bytes() == (outs[1] / "summary.json").read_bytes()
    assert np.array_equal(np.load(outs[0] / "frames.npy"), np.load(outs[1] / "frames.npy"))


def _rows(trace_db: Path) -> list[tuple]:
    if not trace_db.exists():
        return []
    try:
        with sqlite3.connect(trace_db) as conn:
            return conn.execute("select plan_version, try_index, seed, segment, sub_action_index from attempts "
                                "order by plan_version, sub_action_index, try_index").fetchall()
    except sqlite3.OperationalError:
        return []


def test_kill_9_then_resume_finishes_without_redoing_accepted_segments(tmp_path):
    ws, out = tmp_path / "ws", tmp_path / "out"
    from spiral.tools.media import save_png
    from spiral.tools.world.demo import DEMO_ACTION, demo_scene
    from spiral.tools.world.render import render_scene

    image = save_png(render_scene(demo_scene(), 256, 256), tmp_path / "start.png")
    proc = subprocess.Popen([sys.executable, "-m", "spiral.shell.cli", "run", "--image", str(image), "--action",
                             DEMO_ACTION, "--thread-id", "crash", "--workspace", str(ws), "--out", str(out),
                             "--height", "256", "--width", "256", "--frames", "32"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 90
    while time.time() < deadline and not any(r[4] >= 2 for r in _rows(ws / "traces.sqlite")):
        assert proc.poll() is None, "the run finished before it could be killed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = [r for r in _rows(ws / "traces.sqlite") if r[4] < 2]
    assert not (out / "summary.json").exists()

    res = spiral("resume", "crash", "--workspace", str(ws))
    assert res.returncode == 0, res.stderr
    after = _rows(ws / "traces.sqlite")
    assert [r for r in after if r[4] < 2] == before  # accepted segments were not generated again
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["outcomes"]) == len(summary["plan"])
    again = spiral("resume", "crash", "--workspace", str(ws))
    assert again.returncode == 0 and "already finished" in again.stdout


@pytest.mark.parametrize("args,message", [
    (["run", "--image", "/no/such.png", "--action", "put the red ball in the bowl"], "not found"),
    (["run", "--image", "{bad}", "--action", "put the red ball in the bowl"], "cannot read"),
    (["run", "--image", "{png}", "--action", "dance a jig"], "I understand"),
    (["run", "--image", "{png}", "--action", "put the purple ball in the bowl"], "no purple ball"),
    (["run", "--image", "{png}", "--action", "put the red ball in the bowl", "--backbone", "sora"], "unknown backbone"),
    (["run", "--image", "{png}", "--action", "put the red ball in the bowl", "--height", "-5"], "between 32 and 2048"),
    (["run", "--image", "{png}", "--action", "put the red ball in the bowl", "--width", "100000"], "between 32 and 2048"),
    (["run", "--image", "{png}", "--action", "put the red ball in the bowl", "--frames", "0"], "between 2 and 257"),
    (["run", "--image", "{png}", "--action", "put the red ball in the bowl", "--difficulty", "x"], "difficulty"),
    (["resume", "nope"], "no checkpoints"),
])
def test_bad_input_is_one_line_and_nonzero(tmp_path, scene_png, args, message):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    args = [a.replace("{png}", str(scene_png)).replace("{bad}", str(bad)) for a in args]
    res = spiral(*args, "--workspace", str(tmp_path / "ws"))
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("spiral: error:") and message in lines[0], res.stderr
    assert not (tmp_path / "ws" / "checkpoints.sqlite").exists()  # no thread was started


def test_thread_ids_are_not_reused(tmp_path, scene_png):
    args = ["run", "--image", str(scene_png), "--action", "put the red ball in the bowl", "--thread-id", "x",
            "--workspace", str(tmp_path / "ws"), "--out", str(tmp_path / "o")]
    assert spiral(*args).returncode == 0
    res = spiral(*args)
    assert res.returncode != 0 and "already exists" in res.stderr


def test_backbones_lists_the_simulator():
    res = spiral("backbones")
    assert res.returncode == 0 and "sim" in res.stdout and "SIMULATOR" in res.stdout
    tabletop = next(line for line in res.stdout.splitlines() if line.startswith("tabletop-tiny"))
    assert "(weights shipped with SPIRAL)" in tabletop and "/" not in tabletop.split(";")[0]  # no machine's path


def test_an_image_outside_the_tabletop_world_is_refused_before_a_thread_starts(tmp_path):
    from PIL import Image

    grey = tmp_path / "grey.png"
    Image.new("RGB", (200, 150), (128, 128, 128)).save(grey)
    res = spiral("run", "--image", str(grey), "--action", "put the red ball in the bowl",
                 "--workspace", str(tmp_path / "ws"))
    assert res.returncode == 2 and "does not look like SPIRAL's tabletop world" in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "ws" / "checkpoints.sqlite").exists()


def test_review_without_a_terminal_pauses_and_resume_answers(tmp_path, scene_png):
    ws = str(tmp_path / "ws")
    res = spiral("run", "--image", str(scene_png), "--action", "put the red ball in the bowl then stack the blue "
                 "cube on the green cube", "--difficulty", "easy", "--review", "--thread-id", "rv",
                 "--workspace", ws, "--out", str(tmp_path / "out"), stdin=subprocess.DEVNULL)
    assert res.returncode == 5, res.stderr  # waiting for a review
    assert "paused for review" in res.stdout and "--approve" in res.stdout
    assert (Path(ws) / "review" / "rv.gif").stat().st_size > 0  # the segment to look at
    assert not (tmp_path / "out" / "summary.json").exists()

    res = spiral("resume", "rv", "--workspace", ws, "--reject", "the ball is not in the bowl", stdin=subprocess.DEVNULL)
    assert res.returncode == 5, res.stderr  # the new try waits for a review too
    assert "review: rejected (reviewer: the ball is not in the bowl)" in res.stdout and "refine" in res.stdout
    for _ in range(20):
        res = spiral("resume", "rv", "--workspace", ws, "--approve", stdin=subprocess.DEVNULL)
        if "paused for review" not in res.stdout:
            break
        assert res.returncode == 5, res.stderr
    assert res.returncode == 0, res.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["status"] == "done" and all(o["reviewed"] for o in summary["outcomes"])
    res = spiral("resume", "rv", "--workspace", ws, "--approve")
    assert res.returncode != 0 and "not waiting for a review" in res.stderr
