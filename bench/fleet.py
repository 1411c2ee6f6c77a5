"""A LangGraph fleet on this machine, and what it is worth: episodes per minute on 1 and 2 servers.

`local_fleet(n)` starts what a deployment has, small: one PostgreSQL (checkpoints, store, traces), one
S3-compatible store (artifacts; moto's server mode) and `n` `langgraph dev` processes that share them.
`fleet_throughput` runs the same ActWM-Sim tasks in this process and through fleets of 1 and 2 servers
with `spiral train collect --server`'s client (graph/fleet.py), and checks that every run made the same
episodes (status, generator calls, the attempts' seeds and segments).

    python -m spiral.bench.fleet --size 16 --docs docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .server import POSTGRES_PERSISTENCE, DevServer, server_env, start_dev_server
from .services import local_postgres, local_s3

TOKEN = "fleet-token-0123456789"
PREFIX = "collect"


@dataclass
class LocalFleet:
    database_uri: str
    storage_env: dict[str, str]
    servers: list[DevServer] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]

    @property
    def client_env(self) -> dict[str, str]:
        """What a trainer or `spiral traces` on this machine needs to read the fleet's traces and artifacts."""
        return {"SPIRAL_DATABASE_URI": self.database_uri, "SPIRAL_SERVER_TOKEN": TOKEN, **self.storage_env}


def fresh_database(uri: str, name: str) -> str:
    """A new, empty database on `uri`'s server (one per measurement, so no run finds another's threads)."""
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return uri.rsplit("/", 1)[0] + f"/{name}"


@contextmanager
def local_fleet(servers: int, folder: Path, database_uri: str | None = None,
                storage_env: dict[str, str] | None = None) -> Iterator[LocalFleet]:
    """`servers` langgraph dev processes on one PostgreSQL and one S3 store (started here unless given)."""
    with ExitStack() as stack:
        uri = database_uri or stack.enter_context(local_postgres())
        storage = storage_env or stack.enter_context(local_s3())
        fleet = LocalFleet(uri, storage)
        for i in range(servers):
            env = {**server_env(folder / f"ws{i}", tokens=f"fleet:{TOKEN}"), "SPIRAL_DATABASE_URI": uri, **storage}
            server = start_dev_server(env, folder / f"server{i}", extra_config=POSTGRES_PERSISTENCE)
            stack.callback(server.stop)
            fleet.servers.append(server)
        yield fleet


def episodes_in(database_uri: str) -> dict[str, tuple]:
    """Per episode thread in the fleet's traces: (status, generator calls, ((sub-action, try, seed, segment), ...))."""
    import psycopg

    with psycopg.connect(database_uri, autocommit=True) as conn:
        episodes = conn.execute("select thread_id, status, generator_calls from spiral_traces.episodes").fetchall()
        attempts: dict[str, list] = {}
        for row in conn.execute("select thread_id, plan_version, sub_action_index, try_index, seed, segment "
                                "from spiral_traces.attempts order by plan_version, sub_action_index, try_index"):
            attempts.setdefault(row[0], []).append(tuple(row[1:]))
    return {tid: (status, calls, tuple(attempts.get(tid, ()))) for tid, status, calls in episodes}


def in_process_episodes(size: int, difficulty: str, folder: Path) -> tuple[dict[str, tuple], float]:
    """The same tasks through the session driver here (SQLite, local artifacts), keyed by fleet thread id."""
    from ..graph.fleet import thread_id_for
    from ..memory.workspace import Workspace
    from ..training.collect import run_tasks
    from ..vocabulary.config import RunContext

    context = RunContext(workspace=str(folder), difficulty=difficulty, write_video=False)
    started = time.perf_counter()
    run_tasks(context, "train", size, PREFIX)
    seconds = time.perf_counter() - started
    with Workspace.of(folder).reading_traces() as traces:
        rows = {e.thread_id: e for e in traces.episodes()}
        out = {}
        for name, episode in rows.items():
            attempts = tuple((a.plan_version, a.sub_action_index, a.try_index, a.seed, a.segment)
                             for a in traces.attempts(name))
            out[thread_id_for(name)] = (episode.status, episode.generator_calls, attempts)
    return out, seconds


def fleet_run(fleet: LocalFleet, size: int, difficulty: str, concurrency: int, prefix: str = PREFIX) -> float:
    """`collect --server` over the fleet's servers (the client in this process); its wall seconds."""
    from ..graph.fleet import Fleet
    from ..training.collect import run_tasks_on_fleet
    from ..vocabulary.config import RunContext

    context = RunContext(difficulty=difficulty, write_video=False)
    report = run_tasks_on_fleet(context, "train", size, prefix, Fleet(fleet.urls, TOKEN, concurrency=concurrency))
    if report.failed:
        raise RuntimeError(f"fleet episodes failed: {[o.reason for o in report.failed]}")
    return report.seconds


def fleet_throughput(size: int = 16, difficulty: str = "medium", concurrency: int = 2) -> dict:
    root = Path(tempfile.mkdtemp(prefix="spiral-fleet-"))
    reference, local_s = in_process_episodes(size, difficulty, root / "local")
    rows = [{"where": "in-process (session driver, SQLite)", "servers": 0, "seconds": local_s, "same": size}]
    with local_postgres() as pg, local_s3() as storage:
        for servers in (1, 2):
            uri = fresh_database(pg, f"fleet_{servers}")
            with local_fleet(servers, root / f"fleet{servers}", uri, storage) as fleet:
                fleet_run(fleet, servers, difficulty, concurrency, "warm")  # each server's first episode pays imports
                seconds = fleet_run(fleet, size, difficulty, concurrency)
                got = episodes_in(uri)
            same = sum(got.get(tid) == want for tid, want in reference.items())
            rows.append({"where": f"{servers} langgraph dev server(s), {concurrency} in flight each", "servers": servers,
                         "seconds": seconds, "same": same})
    return {"size": size, "difficulty": difficulty, "rows": rows}


def fleet_section(result: dict, command: str) -> str:
    import os

    lines = ["### Fleet: episodes per minute on 1 and 2 LangGraph servers", "", "```bash", command, "```", "",
             f"{result['size']} ActWM-Sim train tasks at `{result['difficulty']}`, `sim` backbone, seed 0, on "
             f"{os.cpu_count()} CPU cores. The servers are `langgraph dev` processes sharing one local PostgreSQL "
             "(checkpoints, traces) and one moto S3 store (artifacts), driven by `spiral train collect --server`'s "
             "client; wall time after a warm-up episode per server. \"Same episodes\" compares each episode's status, "
             "generator calls and every attempt's seed and segment with the in-process run.", "",
             "| where | s | episodes / min | same episodes as in-process |", "| --- | --- | --- | --- |"]
    for row in result["rows"]:
        lines.append(f"| {row['where']} | {row['seconds']:.1f} | {60 * result['size'] / row['seconds']:.1f} | "
                     f"{row['same']} of {result['size']} |")
    served = [r["seconds"] for r in result["rows"][1:]]
    if len(served) == 2:
        lines += ["", f"Two servers vs one: {served[0] / served[1]:.2f}x the episodes per minute. On a sim episode "
                  "a served episode spends much of its time waiting (the server's queue, PostgreSQL and S3 round "
                  "trips), which a second process overlaps, until the cores are busy; with a GPU backbone per "
                  "server an episode is mostly the segments' render and each server adds its GPU."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    from .report import write_section

    parser = argparse.ArgumentParser(prog="python -m spiral.bench.fleet", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--difficulty", default="medium")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--docs", default="docs/benchmarks.md")
    args = parser.parse_args(argv)
    command = f"python -m spiral.bench.fleet --size {args.size} --difficulty {args.difficulty}"
    section = fleet_section(fleet_throughput(args.size, args.difficulty, args.concurrency), command)
    print(section)
    write_section(Path(args.docs), "bench:fleet", section)


if __name__ == "__main__":
    main()
