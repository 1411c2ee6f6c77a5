"""A hostile client of a real `langgraph dev` server: the LLM key stays with the URL it was configured for,
state updates cannot widen the server's folders, a review answer approves only the question it names, and
malformed input is refused at the door."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e

ALICE = "alice-token-0123456789"
SECRET = "sk-spiral-SERVER-KEY-4242"
ACTION = "put the red ball in the bowl"
PLAN = {"sub_actions": [{"verb": "put_in", "subject": "red_ball", "target": "bowl",
                         "description": "put the red ball in the bowl", "prompt": "Put the small red ball in the bowl.",
                         "preconditions": [], "postconditions": ["inside(red_ball, bowl)"]}]}


class RecordingOpenAI:
    """An OpenAI-compatible server on loopback that answers every chat call with a plan and records the
    Authorization header of each request."""

    def __init__(self) -> None:
        self.auth: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                outer.auth.append(self.headers.get("authorization", ""))
                reply = {"id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": json.dumps(PLAN)}}],
                         "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
                raw = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def llms():
    configured, other = RecordingOpenAI(), RecordingOpenAI()
    yield configured, other
    configured.server.shutdown()
    other.server.shutdown()


@pytest.fixture(scope="module")
def server(tmp_path_factory, llms):
    """A server whose key belongs to one LLM server and whose operator allows clients to name the other."""
    from spiral.bench.server import dev_server, server_env

    configured, other = llms
    tmp = tmp_path_factory.mktemp("secure-server")
    env = {**server_env(tmp / "workspace", tokens=f"alice:{ALICE}"), "OPENAI_API_KEY": SECRET,
           "OPENAI_BASE_URL": configured.url, "SPIRAL_ALLOWED_BASE_URLS": other.url}
    with dev_server(env, tmp / "server") as url:
        yield url, tmp


def _client(url: str):
    from langgraph_sdk import get_sync_client

    return get_sync_client(url=url, api_key=None, headers={"Authorization": f"Bearer {ALICE}"})


def _image(scene_png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(scene_png.read_bytes()).decode()


def _refused(call) -> httpx.Response:
    with pytest.raises(httpx.HTTPStatusError) as refused:
        call()
    return refused.value.response


def test_the_key_reaches_only_the_url_it_was_configured_for(server, llms, scene_png):
    url, _ = server
    configured, other = llms
    alice = _client(url)
    llm = {"planner": "llm", "llm_retries": 0}
    for context in ({**llm}, {**llm, "base_url": other.url}):
        tid = alice.threads.create()["thread_id"]
        alice.runs.wait(tid, "spiral", input={"action": ACTION, "image": _image(scene_png)},
                        context={**context, "max_generator_calls": 1})
    assert configured.auth and set(configured.auth) == {f"Bearer {SECRET}"}
    assert other.auth and SECRET not in " ".join(other.auth)  # the allowed other server got no key
    elsewhere = "http://127.0.0.1:9/v1"  # not on the operator's list: refused at the door
    tid = alice.threads.create()["thread_id"]
    response = _refused(lambda: alice.runs.create(tid, "spiral", input={"action": ACTION, "image": _image(scene_png)},
                                                  context={**llm, "base_url": elsewhere}))
    assert response.status_code == 403 and "SPIRAL_ALLOWED_BASE_URLS" in response.json()["detail"]
    assert alice.runs.list(tid) == []


def _paused_at_review(alice, scene_png) -> tuple[str, dict]:
    tid = alice.threads.create()["thread_id"]
    alice.runs.wait(tid, "spiral", input={"action": ACTION, "image": _image(scene_png)},
                    context={"difficulty": "easy", "review": True})
    state = alice.threads.get_state(tid)
    assert state["next"] == ["review"]
    return tid, state["values"]["settings"]


def test_a_state_update_cannot_move_where_the_server_writes(server, scene_png, tmp_path):
    """The door cannot see what `update_state` writes, so every step checks the folders it would use."""
    url, _ = server
    alice = _client(url)
    tid, settings = _paused_at_review(alice, scene_png)
    outside = tmp_path / "escaped"
    alice.threads.update_state(tid, {"settings": {**settings, "out_dir": str(outside), "workspace": str(outside)}})
    run = alice.runs.create(tid, "spiral", input=None)
    result = alice.runs.join(tid, run["run_id"])
    assert result["__error__"]["error"] == "ServerPathError"
    assert result["__error__"]["message"].startswith("out_dir: this server writes and reads only inside its own")
    finished = alice.runs.get(tid, run["run_id"])
    assert finished["status"] == "error"
    assert not outside.exists()  # nothing was written there
    assert alice.threads.get(tid)["status"] == "error"


def test_a_thread_whose_settings_name_another_workspace_goes_on_in_the_servers_own(server, scene_png, tmp_path):
    """A fleet's servers share checkpoints but each has its own workspace folder, so a thread another server
    started names that server's folder; a client may write any folder there too. Steps work in this server's
    workspace either way, and nothing is written where the settings point."""
    url, home = server
    alice = _client(url)
    tid, settings = _paused_at_review(alice, scene_png)
    elsewhere = tmp_path / "another-servers-workspace"
    alice.threads.update_state(tid, {"settings": {**settings, "workspace": str(elsewhere)}})
    for _ in range(12):  # approve every review until the episode ends
        state = alice.threads.get_state(tid)
        if state["values"].get("summary"):
            break
        pending = state.get("interrupts") or []
        answer = {"review_id": pending[0]["value"]["id"], "decision": "approve"} if pending else None
        result = alice.runs.wait(tid, "spiral", input=None, command={"resume": answer} if answer else None)
        assert not (isinstance(result, dict) and "__error__" in result), result
    values = alice.threads.get_state(tid)["values"]
    assert values["summary"] and Path(values["summary"]).resolve().is_relative_to((home / "workspace").resolve())
    assert Path(values["summary"]).exists() and not elsewhere.exists()


def test_a_second_approval_of_the_same_review_is_refused(server, scene_png):
    url, _ = server
    alice = _client(url)
    tid = alice.threads.create()["thread_id"]
    alice.runs.wait(tid, "spiral", input={"action": "put the red ball in the bowl then stack the blue cube on the "
                                                    "green cube", "image": _image(scene_png)},
                    context={"difficulty": "easy", "review": True})
    first = alice.threads.get_state(tid)["interrupts"][0]["value"]
    answer = {"review_id": first["id"], "decision": "approve"}
    alice.runs.wait(tid, "spiral", command={"resume": answer})
    second = alice.threads.get_state(tid)["interrupts"][0]["value"]
    assert second["id"] != first["id"] and second["sub_action"] == 1
    again = _refused(lambda: alice.runs.create(tid, "spiral", command={"resume": answer}))  # the double click
    assert again.status_code == 409 and f"review {first['id']} is no longer pending" in again.json()["detail"]
    unnamed = _refused(lambda: alice.runs.create(tid, "spiral", command={"resume": "approve"}))
    assert unnamed.status_code == 400 and "review_id" in unnamed.json()["detail"]
    assert alice.threads.get_state(tid)["interrupts"][0]["value"]["id"] == second["id"]  # still waiting


@pytest.mark.parametrize("episode,expected", [
    ({"action": ACTION, "image": "IMAGE", "colour": "red"}, "input.colour"),
    (None, "input: a new episode needs"),
], ids=["unknown input key", "null input on a new thread"])
def test_malformed_input_is_refused_at_the_door_naming_it(server, scene_png, episode, expected):
    url, _ = server
    alice = _client(url)
    tid = alice.threads.create()["thread_id"]
    if episode is not None:
        episode = {k: _image(scene_png) if v == "IMAGE" else v for k, v in episode.items()}
    response = _refused(lambda: alice.runs.create(tid, "spiral", input=episode))
    assert response.status_code == 400 and expected in response.json()["detail"]
    assert alice.runs.list(tid) == []
