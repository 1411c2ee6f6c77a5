"""Self-hosting on PostgreSQL: a real server from the OS packages, started by the fixture.

A run is checkpointed in Postgres, killed with SIGKILL mid-episode, and
resumed from another process; the reflective-memory store and `spiral gc`
use the same database. Skipped when PostgreSQL is not installed, unless
SPIRAL_REQUIRE_POSTGRES=1 (CI sets it), where a missing server is a failure.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spiral.bench.server import POSTGRES_PERSISTENCE as PERSISTENCE
from spiral.tools.media import save_png
from spiral.tools.world.demo import DEMO_ACTION, demo_scene
from spiral.tools.world.render import render_scene
from tests.services import postgres_or_skip

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def postgres_uri():
    yield from postgres_or_skip()


def _spiral(*args: str, env: dict, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spiral.shell.cli", *args], capture_output=True, text=True,
                          timeout=180, env=env, **kw)


def _attempts(uri: str, workspace: Path, thread: str = "pg-crash") -> list[tuple]:
    """(sub-action, try, seed, segment) of every generated segment, from the traces in PostgreSQL."""
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_tables where schemaname = 'spiral_traces' and tablename = 'attempts'"
                            ).fetchone():
            return []
        return [tuple(r) for r in conn.execute(
            "select sub_action_index, try_index, seed, segment from spiral_traces.attempts where thread_id = %s "
            "order by plan_version, sub_action_index, try_index", [thread]).fetchall()]


def test_run_killed_and_resumed_from_another_process(postgres_uri, tmp_path):
    ws, out = tmp_path / "ws", tmp_path / "out"
    env = {**os.environ, "SPIRAL_DATABASE_URI": postgres_uri}
    image = save_png(render_scene(demo_scene(), 256, 256), tmp_path / "start.png")
    proc = subprocess.Popen([sys.executable, "-m", "spiral.shell.cli", "run", "--image", str(image), "--action",
                             DEMO_ACTION, "--thread-id", "pg-crash", "--workspace", str(ws), "--out", str(out),
                             "--height", "256", "--width", "256", "--frames", "32", "--memory", "reflective"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and not any(r[0] >= 2 for r in _attempts(postgres_uri, ws)):
        assert proc.poll() is None, f"the run finished before it could be killed: {proc.stderr.read()}"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = [r for r in _attempts(postgres_uri, ws) if r[0] < 2]
    assert before and not (out / "summary.json").exists()
    assert not (ws / "checkpoints.sqlite").exists()  # the checkpoints went to PostgreSQL
    assert not (ws / "traces.sqlite").exists()  # and the traces

    res = _spiral("resume", "pg-crash", "--workspace", str(ws), env=env)
    assert res.returncode == 0, res.stderr
    assert [r for r in _attempts(postgres_uri, ws) if r[0] < 2] == before  # accepted segments not regenerated
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["outcomes"]) == len(summary["plan"])

    # the database holds the thread's checkpoints and history; gc keeps what they reference
    hist = _spiral("history", "pg-crash", "--workspace", str(ws), env=env)
    assert hist.returncode == 0 and hist.stdout.count("\n") > 10, hist.stderr
    gc = _spiral("gc", "--dry-run", "--workspace", str(ws), env=env)
    assert gc.returncode == 0 and gc.stdout.startswith("would remove 0 "), gc.stdout
    again = _spiral("resume", "pg-crash", "--workspace", str(ws), env=env)
    assert again.returncode == 0 and "already finished" in again.stdout


def test_reflective_lessons_live_in_postgres(postgres_uri, tmp_path):
    from spiral.memory.checkpoints import open_store
    from spiral.memory.store import LESSONS, Lesson, recall_flags, write_lessons

    os.environ["SPIRAL_DATABASE_URI"] = postgres_uri
    try:
        lesson = Lesson(verb="put_in", shape="ball", failure="incomplete", failed_prompt="a", fixed_prompt="b",
                        fixed_flags=["complete"], text="put_in ball: 'a' failed (incomplete); 'b' worked")
        with open_store(tmp_path) as store:
            write_lessons(store, [lesson])
        with open_store(tmp_path) as store:  # another connection sees it
            assert store.search(LESSONS, limit=10)
            assert recall_flags(store, "put_in", "ball") == ["complete"]
        assert not (tmp_path / "memory.sqlite").exists()
    finally:
        del os.environ["SPIRAL_DATABASE_URI"]


def test_an_unreachable_database_is_one_clear_line(tmp_path):
    from spiral.bench.server import free_port

    env = {**os.environ, "SPIRAL_DATABASE_URI": f"postgresql://u:secret@127.0.0.1:{free_port()}/x"}
    res = _spiral("demo", "--workspace", str(tmp_path / "ws"), "--out", str(tmp_path / "o"), env=env)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "cannot connect to PostgreSQL at postgresql://u:***@127.0.0.1" in res.stderr
    assert "secret" not in res.stderr


def test_server_checkpoints_in_postgres_survive_a_server_restart(postgres_uri, tmp_path, scene_png):
    """`langgraph dev` with SPIRAL's PostgreSQL checkpointer and store (memory/server_persistence.py):
    an episode paused for review, the server stopped, a new server process resumes it; the CLI reads the
    same thread from the same database."""
    import base64

    import psycopg
    from langgraph_sdk import get_sync_client

    from spiral.bench.server import dev_server, server_env
    from spiral.memory.artifacts import ArtifactStore
    from spiral.vocabulary.state import Ledger

    token = "pg-user-token-0123456789"
    env = {**server_env(tmp_path / "ws", tokens=f"carol:{token}"), "SPIRAL_DATABASE_URI": postgres_uri}
    image = "data:image/png;base64," + base64.b64encode(scene_png.read_bytes()).decode()
    folder = tmp_path / "server"

    def client(url):
        return get_sync_client(url=url, api_key=None, headers={"Authorization": f"Bearer {token}"})

    def asked(c, tid, **kwargs):
        return [i["value"] for part in c.runs.stream(tid, "spiral", stream_mode="updates", **kwargs)
                if part.event == "updates" for i in part.data.get("__interrupt__", [])]

    with dev_server(env, folder, extra_config=PERSISTENCE) as url:
        c = client(url)
        tid = c.threads.create()["thread_id"]
        assert asked(c, tid, input={"action": "put the red ball in the bowl then stack the blue cube on the "
                                    "green cube", "image": image}, context={"difficulty": "easy", "review": True})
    with psycopg.connect(postgres_uri) as conn:  # the server is gone; its checkpoints are in PostgreSQL
        assert conn.execute("select count(*) from checkpoints where thread_id = %s", (tid,)).fetchone()[0] > 3

    with dev_server(env, folder, extra_config=PERSISTENCE) as url:  # a new server process
        c = client(url)
        state = c.threads.get_state(tid)
        assert state["next"] == ["review"]
        pending = [state["interrupts"][0]["value"]]
        while pending:
            pending = asked(c, tid, command={"resume": {"review_id": pending[0]["id"], "decision": "approve"}})
        assert c.threads.get_state(tid)["values"]["status"] == "done"
        # reflective lessons go to the PostgreSQL store (seed 2 fails, then a rewrite fixes a step)
        for seed in (2, 3):
            lesson_thread = c.threads.create()["thread_id"]
            c.runs.wait(lesson_thread, "spiral", input={"action": "put the red ball in the bowl then stack the "
                                                        "blue cube on the green cube", "image": image},
                        context={"difficulty": "hard", "memory": "reflective", "seed": seed})
        ledger_ref = c.threads.get_state(lesson_thread)["values"]["ledger_ref"]
        notes = ArtifactStore(tmp_path / "ws" / "artifacts").get_model(ledger_ref, Ledger).notes
        assert any(n.startswith("reflective memory: ") and not n.startswith("reflective memory: 0 of") for n in notes)
    with psycopg.connect(postgres_uri) as conn:
        assert conn.execute("select count(*) from store where prefix = 'spiral.lessons'").fetchone()[0] >= 1

    # the CLI opens the same thread in the same database
    hist = _spiral("history", tid, "--workspace", str(tmp_path / "ws"), env={**os.environ, **env})
    assert hist.returncode == 0 and ("done" in hist.stdout or "partial" in hist.stdout), hist.stderr


def _fresh_database(uri: str, name: str) -> str:
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return uri.rsplit("/", 1)[0] + f"/{name}"


@pytest.mark.timeout(900)
def test_kill_9_at_node_boundaries_and_artifacts_on_postgres(postgres_uri, tmp_path):
    """The fault suite's node-boundary and mid-artifact kills with the checkpoints in PostgreSQL (a fresh
    database per kill point): the same byte-identical recovery as on SQLite (tests/faults/). Every second
    checkpoint write and every sixth artifact: tests/faults covers each one on SQLite, and the PostgreSQL
    saver is one code path whatever the step (each kill is two interpreter starts, ~10 s on 2 cores)."""
    from tests.faults.suite import break_and_recover, reference_run, report

    env = {"SPIRAL_DATABASE_URI": _fresh_database(postgres_uri, "fault_reference")}
    ref = reference_run(tmp_path / "reference", env=env)
    assert ref.counts["put"] >= 15 and ref.counts["checkpoint"] == 0  # no SQLite checkpoints were written
    points = [f"put:{n}:after" for n in range(1, ref.counts["put"] + 1, 2)]
    points += [f"artifact:{n}:kill" for n in range(1, ref.counts["artifact"] + 1, 6)]
    outcomes = [break_and_recover(tmp_path, point, ref,
                                  {"SPIRAL_DATABASE_URI": _fresh_database(postgres_uri, f"fault_{i}")})
                for i, point in enumerate(points)]
    text = report("kill -9 on PostgreSQL", outcomes)
    print(text)
    assert all(o.survived for o in outcomes), text
