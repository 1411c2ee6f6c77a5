"""Episodes run on a LangGraph deployment instead of in this process: the client side of a fleet.

`spiral train collect --server URL` (and the fleet benchmark) hand each episode to one of the
servers with langgraph-sdk and wait for it, a bounded number at a time. The servers share one
PostgreSQL (checkpoints and traces) and one artifact store, so any server can carry on any thread:

* each episode's thread id is derived from its name (uuid5), so a rerun finds what an earlier one
  left: a finished thread is kept, an unfinished one is resumed from its last checkpoint (input
  None), a missing one is started; a rerun submits only what is missing;
* when a server stops answering (killed, restarted, unreachable) its episodes move to the next server,
  which resumes them from the shared checkpoints. Nodes write traces under deterministic keys, so a
  node that ran twice (once on the dead server, once after the move) leaves one row.

The client never sends a folder: the servers' own workspace, database and artifact store decide where
things go (and their auth refuses a run input that names one).
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from ..tools.errors import InputError, SpiralError

ASSISTANT = "spiral"
THREAD_NAMESPACE = uuid.UUID("6f1c8c52-3c55-4a7e-9d3e-5f1a2b7c9e01")
SERVER_SIDE_FIELDS = {"workspace", "out_dir", "prompts_dir"}
"""Run-context fields that name folders: the server's own, never sent (its auth refuses them)."""

Progress = Callable[[Iterable, str, int], Iterable]


class FleetError(SpiralError):
    """No server of the fleet could run an episode."""


class FleetEpisode(BaseModel):
    """One episode to run remotely: its name (the thread id derives from it), action, start image, settings."""

    model_config = ConfigDict(frozen=True)

    name: str
    action: str
    image_png: bytes
    context: dict[str, Any] = Field(default_factory=dict)

    @property
    def thread_id(self) -> str:
        return thread_id_for(self.name)

    def start_input(self) -> dict[str, str]:
        return {"action": self.action, "image": "data:image/png;base64," + base64.b64encode(self.image_png).decode()}


class EpisodeOutcome(BaseModel):
    name: str
    thread_id: str
    how: Literal["started", "resumed", "kept", "failed"]
    server: str = ""
    moves: int = 0
    """How many times the episode moved to another server because one stopped answering."""
    status: str = ""
    reason: str = ""
    generator_calls: int = 0
    ledger_ref: str = ""
    """The finished episode's ledger artifact (its accepted segments), for scoring from the shared store."""
    seconds: float = 0.0
    """Wall time from handing the episode to a server to its end, moves included."""


class FleetReport(BaseModel):
    outcomes: list[EpisodeOutcome]
    seconds: float

    def count(self, how: str) -> int:
        return sum(o.how == how for o in self.outcomes)

    @property
    def moves(self) -> int:
        return sum(o.moves for o in self.outcomes)

    @property
    def failed(self) -> list[EpisodeOutcome]:
        return [o for o in self.outcomes if o.how == "failed"]


def thread_id_for(name: str) -> str:
    """The server thread of an episode name (a LangGraph server wants UUIDs; the same name, the same id)."""
    return str(uuid.uuid5(THREAD_NAMESPACE, name))


def remote_context(context: BaseModel) -> dict[str, Any]:
    """What a run's settings say to a server: the fields that differ from the defaults, folders left out."""
    return context.model_dump(mode="json", exclude_defaults=True, exclude=SERVER_SIDE_FIELDS)


def check_server_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise InputError(f"--server must be an http:// or https:// URL of a LangGraph server; got {url!r}")
    return url.rstrip("/")


class Fleet:
    """The servers and one langgraph-sdk client each; `run` spreads episodes over them."""

    def __init__(self, urls: Sequence[str], token: str = "", *, concurrency: int = 4,
                 run_timeout_s: float = 3600.0) -> None:
        from langgraph_sdk import get_sync_client

        if not urls:
            raise InputError("a fleet needs at least one --server URL")
        if concurrency < 1:
            raise InputError(f"--concurrency must be at least 1; got {concurrency}")
        self.urls = [check_server_url(u) for u in urls]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        timeout = httpx.Timeout(run_timeout_s, connect=10.0)
        self.clients = [get_sync_client(url=u, api_key=None, headers=headers, timeout=timeout) for u in self.urls]
        self.concurrency = concurrency
        self._down: set[int] = set()
        self._lock = threading.Lock()

    def check(self) -> None:
        """Every server answers (one line naming the first that does not), before any episode is sent."""
        for url in self.urls:
            try:
                httpx.get(f"{url}/ok", timeout=10).raise_for_status()
            except httpx.HTTPError as exc:
                raise FleetError(f"LangGraph server {url} does not answer ({type(exc).__name__}: {exc})") from None

    def run(self, episodes: Sequence[FleetEpisode], progress: Progress | None = None) -> FleetReport:
        names = [e.name for e in episodes]
        if len(set(names)) != len(names):
            raise InputError("two fleet episodes share a name (their threads would collide)")
        started = time.perf_counter()
        outcomes: list[EpisodeOutcome] = []
        with ThreadPoolExecutor(self.concurrency * len(self.urls), thread_name_prefix="fleet") as pool:
            futures = [pool.submit(self._episode, e, i % len(self.urls)) for i, e in enumerate(episodes)]
            done = as_completed(futures)
            if progress is not None:
                done = progress(done, f"{len(episodes)} episodes on {len(self.urls)} server(s)", len(futures))
            outcomes = [f.result() for f in done]
        order = {name: i for i, name in enumerate(names)}
        outcomes.sort(key=lambda o: order[o.name])
        return FleetReport(outcomes=outcomes, seconds=time.perf_counter() - started)

    def _next_server(self, preferred: int) -> int | None:
        with self._lock:
            for k in range(len(self.urls)):
                index = (preferred + k) % len(self.urls)
                if index not in self._down:
                    return index
        return None

    def _episode(self, episode: FleetEpisode, preferred: int) -> EpisodeOutcome:
        moves, last_error, started = 0, "", time.perf_counter()
        while (index := self._next_server(preferred)) is not None:
            try:
                how, values = self._run_on(self.clients[index], episode)
                return EpisodeOutcome(name=episode.name, thread_id=episode.thread_id, how=how,
                                      server=self.urls[index], moves=moves, status=values.get("status", ""),
                                      generator_calls=values.get("generator_calls", 0),
                                      ledger_ref=values.get("ledger_ref") or "", seconds=time.perf_counter() - started)
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                # the server stopped answering: the next one resumes the thread from the shared checkpoints
                last_error = f"{self.urls[index]}: {type(exc).__name__}: {exc}"
                with self._lock:
                    self._down.add(index)
                moves += 1
            except httpx.HTTPStatusError as exc:
                return EpisodeOutcome(name=episode.name, thread_id=episode.thread_id, how="failed",
                                      server=self.urls[index], moves=moves, reason=_http_reason(exc))
            except SpiralError as exc:
                return EpisodeOutcome(name=episode.name, thread_id=episode.thread_id, how="failed",
                                      server=self.urls[index], moves=moves, reason=str(exc))
        return EpisodeOutcome(name=episode.name, thread_id=episode.thread_id, how="failed", moves=moves,
                              reason=f"no server answers (last: {last_error})")

    @staticmethod
    def _run_on(client: Any, episode: FleetEpisode) -> tuple[str, dict[str, Any]]:
        tid = episode.thread_id
        client.threads.create(thread_id=tid, if_exists="do_nothing", graph_id=ASSISTANT,
                              metadata={"spiral_episode": episode.name})
        state = client.threads.get_state(tid)
        values = state.get("values") or {}
        if values.get("summary"):
            return "kept", values
        has_progress = bool(values.get("action"))
        result = client.runs.wait(tid, ASSISTANT, input=None if has_progress else episode.start_input(),
                                  context=episode.context, multitask_strategy="enqueue", raise_error=False)
        values = client.threads.get_state(tid).get("values") or {}
        if not values.get("summary"):
            error = result.get("__error__") if isinstance(result, dict) else None
            reason = error.get("message", error) if isinstance(error, dict) else "the run ended unfinished"
            raise FleetError(f"episode {episode.name} (thread {tid}): {reason}")
        return ("resumed" if has_progress else "started"), values


def _http_reason(exc: httpx.HTTPStatusError) -> str:
    try:
        body = exc.response.json()
    except ValueError:
        body = exc.response.text[:200]
    detail = (body.get("detail") or body.get("message") or body) if isinstance(body, dict) else body
    return f"{exc.response.status_code} from {exc.request.url}: {detail}"
