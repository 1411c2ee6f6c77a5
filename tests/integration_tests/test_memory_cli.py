"""Traces, time travel and garbage collection from the command line."""

import json
import sqlite3
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def spiral(*args):
    return subprocess.run([sys.executable, "-m", "spiral.shell.cli", *args], capture_output=True, text=True,
                          timeout=180)


@pytest.fixture
def episode(tmp_path):
    ws = tmp_path / "ws"
    res = spiral("demo", "--thread-id", "d1", "--seed", "0", "--workspace", str(ws), "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    return ws


def test_traces_ls_show_export(episode, tmp_path):
    assert "d1" in spiral("traces", "ls", "--workspace", str(episode)).stdout
    shown = spiral("traces", "show", "d1", "--workspace", str(episode))
    assert shown.returncode == 0 and "pass" in shown.stdout
    for fmt in ("jsonl", "parquet"):
        out = tmp_path / f"t.{fmt}"
        res = spiral("traces", "export", "--format", fmt, "--out", str(out), "--workspace", str(episode))
        assert res.returncode == 0 and out.stat().st_size > 0
    rows = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert {"prompt", "seed", "scores", "passed", "segment", "generate_s", "conditioning_frame", "critic",
            "judged", "evidence"} <= set(rows[0])
    assert rows[0]["critic"] == "perception" and rows[0]["judged"] is True
    assert rows[0]["conditioning_frame"].startswith("sha256:") and "shift:red_ball" in rows[0]["evidence"]
    with sqlite3.connect(episode / "traces.sqlite") as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
        assert {"episodes", "plans", "sub_actions", "attempts", "meta"} <= tables
        keys = conn.execute("select thread_id, plan_version, sub_action_index, try_index from attempts").fetchall()
        ids = [r[0] for r in conn.execute("select sub_action_id from sub_actions")]
    assert len(keys) == len(set(keys)) == len(rows) and ids == ["s0", "s1", "s2", "s3"]
    assert spiral("traces", "show", "nope", "--workspace", str(episode)).returncode != 0


def test_fork_replays_from_a_checkpoint_with_a_new_instruction(episode):
    history = spiral("history", "d1", "--workspace", str(episode)).stdout.splitlines()[1:]
    lines = [line.split() for line in history]
    ckpt, inherited = next((row[0], int(row[5])) for row in lines if row[2] == "generate" and row[3] == "4")
    text = "Pick up the small yellow cube and set it all the way on top of the blue block. Keep every other object still."
    res = spiral("fork", "d1", "--checkpoint", ckpt, "--instruction", text, "--new-thread-id", "f1",
                 "--workspace", str(episode))
    assert res.returncode == 0, res.stderr
    source = json.loads((episode.parent / "out" / "summary.json").read_text())
    forked = json.loads((episode / "runs" / "f1" / "summary.json").read_text())
    assert forked["outcomes"][:3] == source["outcomes"][:3]  # the shared prefix
    # the fork starts with the tries its state inherited (their records come along), then uses the new instruction
    assert [a["prompt"] == text for a in forked["attempts"]][:inherited + 1] == [False] * inherited + [True]
    assert spiral("fork", "d1", "--checkpoint", "nope", "--workspace", str(episode)).returncode != 0


def test_gc_keeps_everything_referenced(episode):
    from spiral.memory.artifacts import ArtifactStore
    from spiral.memory.gc import referenced

    store = ArtifactStore(episode / "artifacts")
    stray = store.put_bytes(b"nobody points at me", "bin")
    before = referenced(episode)
    assert before and stray not in before
    res = spiral("gc", "--workspace", str(episode))
    assert res.returncode == 0 and "removed 0 " in res.stdout  # a new file is within the grace period
    res = spiral("gc", "--workspace", str(episode), "--grace-minutes", "0")
    assert res.returncode == 0 and "removed 1 " in res.stdout
    assert not store.path(stray).exists()
    for ref in before:  # every referenced artifact survived and still loads
        assert store.path(ref).exists(), ref
    assert spiral("resume", "d1", "--workspace", str(episode)).returncode == 0


def test_gc_stops_on_a_trajectory_it_cannot_read(tmp_path):
    """A truncated trajectory could reference artifacts gc cannot see: gc removes nothing and says why."""
    from spiral.memory.artifacts import ArtifactStore
    from spiral.memory.traces import AttemptRecord, TraceDB

    store = ArtifactStore(tmp_path / "artifacts")
    embeds = store.put_bytes(b"prompt embeddings", "safetensors")
    broken = store.put_bytes((10_000).to_bytes(8, "little") + f'{{"__metadata__": {{"e": "{embeds}"'.encode(),
                             "safetensors")
    stray = store.put_bytes(b"nobody points at me", "bin")
    TraceDB(tmp_path / "traces.sqlite").record_attempt(AttemptRecord(
        thread_id="t", plan_version=0, sub_action_index=0, try_index=0, sub_action_id="s0", verb="put_in", movers=[],
        postconditions=[], prompt="p", flags=[], seed=0, backbone="sim", conditioning_frame="", segment="",
        last_frame="", thumbnail="", trajectory=broken))
    res = spiral("gc", "--workspace", str(tmp_path))
    assert res.returncode == 2 and "gc stopped, nothing removed" in res.stderr and "truncated" in res.stderr
    assert store.path(stray).exists() and store.path(embeds).exists()


def test_gc_removes_nothing_while_a_run_holds_the_workspace_nor_what_is_being_written(tmp_path):
    """A live run holds the workspace's lease (here this process, as a session driver does): gc stops. Without
    runs, a temporary file mid-write and a young artifact stay; an old unreferenced one goes."""
    import os
    import time

    from spiral.memory.artifacts import ArtifactStore
    from spiral.memory.lease import run_lease

    store = ArtifactStore(tmp_path / "artifacts")
    old, young = store.put_bytes(b"old and unreferenced", "bin"), store.put_bytes(b"young", "bin")
    an_hour_ago = time.time() - 7200
    os.utime(store.path(old), (an_hour_ago, an_hour_ago))
    writing = store.path(old).parent / f".tmp-1-2-{store.path(old).name}"
    writing.write_bytes(b"half")
    os.utime(writing, (an_hour_ago, an_hour_ago))
    with run_lease(tmp_path):
        busy = spiral("gc", "--workspace", str(tmp_path))
    assert busy.returncode == 2 and busy.stderr.strip() == (
        f"spiral: error: gc stopped, nothing removed: runs are using {tmp_path.resolve()} (they hold its lease); run "
        "gc again when they have finished")
    assert store.path(old).exists()
    res = spiral("gc", "--workspace", str(tmp_path))
    assert res.returncode == 0 and res.stdout.strip() == "removed 1 unreferenced artifacts (0.0 MB)"
    assert not store.path(old).exists() and store.path(young).exists() and writing.exists()
