"""`spiral serve-generator` and `--backbone remote`: the shipped tabletop-tiny served over `/v1/videos`
renders the same frames as the local backbone for the same seed, and an episode runs through it."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from spiral.tools.video import SegmentRequest, load_generator
from spiral.tools.world.render import render_scene
from spiral.tools.world.scene import random_scene

pytestmark = pytest.mark.e2e
LOCAL = dict(model="", dtype="auto", device="cpu", cpu_offload=False, vae_tiling=False, lora="")


@pytest.fixture
def served(tmp_path):
    """`spiral serve-generator` on a free loopback port; yields (url, key)."""
    env = {**os.environ, "SPIRAL_GENERATOR_API_KEY": "k-123"}
    proc = subprocess.Popen([sys.executable, "-m", "spiral.shell.cli", "serve-generator", "--port", "0", "--device",
                             "cpu"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    match = re.search(r"on (http://127\.0\.0\.1:\d+/v1) \(bearer key required\)", line)
    assert match, (line, proc.stderr.read() if proc.poll() is not None else "")
    yield match.group(1), "k-123"
    proc.terminate()
    proc.wait(timeout=30)


def test_remote_tabletop_tiny_gives_the_local_frames_for_the_same_seed(served):
    url, key = served
    remote = load_generator("remote", model="", trajectory=False, generator_url=url, generator_api_key=key)
    local = load_generator("tabletop-tiny", **LOCAL)
    image = render_scene(random_scene(3))
    ask = dict(image=image, prompt="Put the red ball in the white bowl.", num_frames=9, height=128, width=128)
    for seed in (1, 2):
        got = remote.generate(SegmentRequest(**ask, seed=seed)).frames
        want = local.generate(SegmentRequest(**ask, seed=seed)).frames
        assert got.shape == want.shape == (9, 128, 128, 3)
        assert np.array_equal(got, want), f"seed {seed}: {int((got != want).sum())} values differ"
    assert not np.array_equal(remote.generate(SegmentRequest(**ask, seed=1)).frames[1:],
                              remote.generate(SegmentRequest(**ask, seed=2)).frames[1:])


def test_an_episode_runs_on_the_remote_backbone_and_refuses_rl_collection(served, tmp_path):
    url, key = served
    env = {**os.environ, "SPIRAL_GENERATOR_URL": url, "SPIRAL_GENERATOR_API_KEY": key}
    base = [sys.executable, "-m", "spiral.shell.cli"]
    from spiral.tools.world.demo import DEMO_ACTION

    subprocess.run([*base, "scene", "--out", str(tmp_path / "start.png")], check=True, env=env, timeout=120)
    run = subprocess.run([*base, "run", "--image", str(tmp_path / "start.png"), "--action", DEMO_ACTION, "--backbone",
                          "remote", "--frames", "9", "--height", "128", "--width", "128", "--max-calls", "2",
                          "--workspace", str(tmp_path / "ws"), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, env=env, timeout=600)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["settings"]["backbone"] == "remote" and summary["generator_calls"] >= 1, run.stderr
    collect = subprocess.run([*base, "train", "collect", "--backbone", "remote", "--trajectory", "--size", "1", "--workspace",
                              str(tmp_path / "ws2")], capture_output=True, text=True, env=env, timeout=300)
    assert collect.returncode == 2
    assert "a serving engine returns pixels, not the per-step latents" in collect.stderr.strip().splitlines()[-1]
