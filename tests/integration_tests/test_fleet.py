"""Rollouts from a LangGraph fleet: two `langgraph dev` servers on one PostgreSQL and one S3-compatible store
(moto), `spiral train collect --server A --server B`, one server killed with SIGKILL mid-way. Every episode
ends exactly once, with the very attempts an in-process run makes, and `spiral train grpo` trains from what
the fleet recorded. Skipped without PostgreSQL or moto outside CI (CI requires them)."""

import os
import re
import subprocess
import sys
import time

import psycopg
import pytest

from spiral.bench.fleet import episodes_in, fresh_database, in_process_episodes, local_fleet
from tests.services import postgres_or_skip, s3_or_skip

pytestmark = pytest.mark.e2e
SIZE = 6


@pytest.fixture(scope="module")
def postgres_uri():
    yield from postgres_or_skip()


@pytest.fixture(scope="module")
def storage_env():
    yield from s3_or_skip()


def collect(*args: str, env: dict, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "spiral.shell.cli", "train", "collect", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env}, **kw)


def done_episodes(uri: str) -> int:
    with psycopg.connect(uri, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_tables where schemaname = 'spiral_traces' and tablename = 'episodes'"
                            ).fetchone():
            return 0
        return conn.execute("select count(*) from spiral_traces.episodes where status <> 'running'").fetchone()[0]


@pytest.mark.timeout(900)
def test_a_server_killed_mid_way_loses_and_duplicates_no_episode(postgres_uri, storage_env, tmp_path):
    reference, _ = in_process_episodes(SIZE, "medium", tmp_path / "in-process")
    assert len(reference) == SIZE and all(attempts for _, _, attempts in reference.values())
    uri = fresh_database(postgres_uri, "fleet_kill")
    with local_fleet(2, tmp_path / "fleet", uri, storage_env) as fleet:
        servers = [a for url in fleet.urls for a in ("--server", url)]
        proc = collect("--size", str(SIZE), "--difficulty", "medium", "--no-write-video", "--concurrency", "1",
                       *servers, env=fleet.client_env)
        deadline = time.monotonic() + 300
        while done_episodes(uri) < 1 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        fleet.servers[0].kill()  # mid-way: one episode done, others in flight on both servers
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, out[-3000:] + err[-2000:]  # a failed episode's reason is in stdout
        moved = int(re.search(r"\((\d+) moved off a server that stopped answering\)", out).group(1))
        assert moved >= 1, out
        assert episodes_in(uri) == reference  # each episode once, the same attempts, seeds and segments

        again = collect("--size", str(SIZE), "--difficulty", "medium", "--no-write-video", "--server",
                        fleet.urls[1], env=fleet.client_env)
        out, err = again.communicate(timeout=300)
        assert again.returncode == 0, err[-2000:]
        assert f"0 episodes started, 0 resumed, {SIZE} already there, 0 failed" in out.replace("\n", " ")


@pytest.mark.timeout(900)
def test_grpo_trains_from_the_rollouts_a_fleet_recorded(postgres_uri, storage_env, tmp_path):
    from spiral.tools.video.adapters import read_card

    uri = fresh_database(postgres_uri, "fleet_grpo")
    with local_fleet(1, tmp_path / "fleet", uri, storage_env) as fleet:
        proc = collect("--backbone", "tiny-wan", "--size", "1", "--group", "3", "--frames", "5", "--steps", "2",
                       "--max-calls", "6", "--server", fleet.urls[0], env=fleet.client_env)
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
    train = subprocess.run([sys.executable, "-m", "spiral.shell.cli", "train", "grpo", "--workspace",
                            str(tmp_path / "trainer"), "--out", str(tmp_path / "grpo"), "--recipe", "tiny-cpu",
                            "--epochs", "1", "--reward", "brightness=1"], capture_output=True, text=True,
                           env={**os.environ, **fleet.client_env}, timeout=600)
    assert train.returncode == 0, train.stderr[-2000:]
    card = read_card(tmp_path / "grpo" / "adapter")
    assert (card.backbone, card.method) == ("tiny-wan", "grpo") and card.optimizer_steps > 0


@pytest.mark.timeout(900)
def test_bench_on_a_fleet_gives_the_in_process_figures(postgres_uri, storage_env, tmp_path, monkeypatch):
    """`spiral bench --server`: the servers run the episodes, this process re-renders each recorded segment
    to recover the simulator's truth and scores it; every figure but the timings equals the in-process bench."""
    from spiral.bench.runner import run_bench

    methods = ["spiral", "spiral-no-critic"]
    bench = dict(split="test", size=3, seeds=2, difficulty="medium", workers=1, progress=False)
    local = run_bench(methods, results=tmp_path / "local.sqlite", **bench).rows("test", "medium", methods)
    uri = fresh_database(postgres_uri, "fleet_bench")
    with local_fleet(1, tmp_path / "fleet", uri, storage_env) as fleet:
        for key, value in fleet.client_env.items():
            monkeypatch.setenv(key, value)
        served = run_bench(methods, results=tmp_path / "served.sqlite", servers=fleet.urls,
                           **bench).rows("test", "medium", methods)
    timing = {"wall_s", "generator_s", "checkpoint_bytes"}

    def figures(rows):
        return sorted(tuple(sorted(r.model_dump(exclude=timing).items())) for r in rows)

    assert len(local) == len(served) == 12
    assert figures(served) == figures(local)
    assert sum(r.critic_tp + r.critic_fp + r.critic_fn + r.critic_tn for r in local if r.method == "spiral") > 0
