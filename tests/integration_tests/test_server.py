"""The graph behind a real `langgraph dev` server, driven with langgraph-sdk as users would.

The server runs on a loopback port with SPIRAL's langgraph.json (auth, store
index, env) and is stopped by the fixture. Two users have tokens; the test
streams an episode, reviews its segments, reads its state and history, and
checks that the other user cannot see or resume it.
"""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e

ALICE, BOB = "alice-token-0123456789", "bob-token-9876543210"
ACTION = "put the red ball in the bowl then stack the blue cube on the green cube"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`langgraph dev` on 127.0.0.1 with SPIRAL's langgraph.json (no browser, no reload) and two users,
    its dev persistence in a fresh folder; stopped, with its whole process group, after the module."""
    from spiral.bench.server import dev_server, server_env

    tmp = tmp_path_factory.mktemp("server")
    env = server_env(tmp / "workspace", tokens=f"alice:{ALICE},bob:{BOB}")
    with dev_server(env, tmp / "server") as url:
        yield url, tmp


def _client(url: str, token: str | None):
    from langgraph_sdk import get_sync_client

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return get_sync_client(url=url, api_key=None, headers=headers)


def _stream(client, thread_id: str, **kwargs) -> tuple[list[dict], list[dict], list[str]]:
    """(custom events, interrupt payloads, nodes updated) of one streamed run."""
    events, asked, nodes = [], [], []
    for part in client.runs.stream(thread_id, "spiral", stream_mode=["updates", "custom"], **kwargs):
        if part.event == "custom":
            events.append(part.data)
        elif part.event == "updates":
            for key, value in part.data.items():
                if key == "__interrupt__":
                    asked.extend(i["value"] for i in value)
                else:
                    nodes.append(key)
        elif part.event == "error":
            raise AssertionError(f"run failed: {part.data}")
    return events, asked, nodes


def _image(scene_png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(scene_png.read_bytes()).decode()


def test_episode_with_streaming_review_history_and_owners(server, scene_png):
    url, _ = server
    alice, bob = _client(url, ALICE), _client(url, BOB)
    thread = alice.threads.create()
    tid = thread["thread_id"]
    assert thread["metadata"]["owner"] == "alice"

    events, asked, nodes = _stream(alice, tid, input={"action": ACTION, "image": _image(scene_png)},
                                   context={"difficulty": "easy", "review": True})
    assert nodes[:4] == ["ingest", "plan", "generate", "critique"]  # node updates stream step by step
    kinds = [e["event"] for e in events]
    assert {"generator_progress", "segment", "critique"} <= set(kinds)
    assert len(asked) == 1 and asked[0]["sub_action"] == 0
    assert asked[0]["thumbnail"].startswith("data:image/jpeg;base64,")
    state = alice.threads.get_state(tid)
    assert state["next"] == ["review"]
    thumbnail = state["values"]["attempts"][-1]["thumbnail"]  # an artifact ref; the question carries the bytes
    assert _get(url, ALICE, f"/spiral/artifacts/{thumbnail}").content == base64.b64decode(asked[0]["thumbnail"][23:])

    # reject once with feedback: the segment is generated again, then reviewed again
    _, asked, nodes = _stream(alice, tid, command={"resume": {"review_id": asked[0]["id"], "decision": "reject",
                                                              "feedback": "not far enough"}})
    assert "refine" in nodes and "generate" in nodes
    assert asked and asked[0]["sub_action"] == 0
    rejected = [a for a in alice.threads.get_state(tid)["values"]["attempts"] if a["review"] == "rejected"]
    assert len(rejected) == 1 and rejected[0]["critique"]["feedback"] == "reviewer: not far enough"

    # the other user can neither read nor resume it, nor find it
    for call in (lambda: bob.threads.get(tid), lambda: bob.threads.get_state(tid),
                 lambda: bob.runs.create(tid, "spiral", command={"resume": {"review_id": asked[0]["id"],
                                                                             "decision": "approve"}})):
        with pytest.raises(httpx.HTTPStatusError) as refused:
            call()
        assert refused.value.response.status_code in (403, 404)
    assert tid not in [t["thread_id"] for t in bob.threads.search()]
    assert tid in [t["thread_id"] for t in alice.threads.search()]

    while asked:
        _, asked, _ = _stream(alice, tid, command={"resume": {"review_id": asked[0]["id"], "decision": "approve"}})
    final = alice.threads.get_state(tid)["values"]
    outcomes = _ledger(url, final)["outcomes"]
    assert final["status"] == "done" and len(outcomes) == 2
    assert all(o["reviewed"] for o in outcomes)
    assert Path(final["video"]).is_file()
    history = alice.threads.get_history(tid, limit=200)
    assert len(history) > 8 and {"review", "advance"} <= {n for h in history for n in h["next"]}


def test_requests_without_a_known_token_are_refused(server):
    url, _ = server
    for token in (None, "not-a-token-at-all"):
        with pytest.raises(httpx.HTTPStatusError) as refused:
            _client(url, token).threads.create()
        assert refused.value.response.status_code == 401


def test_runs_cannot_choose_server_paths(server, scene_png):
    url, tmp = server
    alice = _client(url, ALICE)
    tid = alice.threads.create()["thread_id"]
    with pytest.raises(httpx.HTTPStatusError) as refused:
        alice.runs.create(tid, "spiral", input={"action": ACTION, "image": _image(scene_png)},
                          context={"workspace": "/tmp/elsewhere"})
    assert refused.value.response.status_code == 403 and "set by the server" in refused.value.response.text


def test_start_image_paths_outside_the_input_root_are_refused_before_the_run(server, scene_png):
    url, tmp = server
    alice = _client(url, ALICE)
    tid = alice.threads.create()["thread_id"]
    with pytest.raises(httpx.HTTPStatusError) as refused:
        alice.runs.create(tid, "spiral", input={"action": ACTION, "image": str(scene_png)})
    assert refused.value.response.status_code == 400
    assert "start image paths must be inside" in refused.value.response.json()["detail"]
    assert alice.runs.list(tid) == []  # no run was made, so no node ran


@pytest.mark.parametrize("episode,context", [
    ({"action": "do a barrel roll"}, {}),
    ({"action": ACTION}, {"backbone": "nope"}),
    ({"action": ACTION}, {"max_tries_per_segment": 0}),
    ({"action": ACTION, "image": "data:image/png;base64"}, {}),
], ids=["bad action", "unknown backbone", "budget out of range", "data URL without a comma"])
def test_bad_runs_get_400_with_the_message_the_cli_prints(server, scene_png, episode, context):
    """The same check as `spiral run` (nodes/preflight.check_start), before any node runs."""
    from spiral.nodes.preflight import check_start
    from spiral.tools.errors import SpiralError

    url, _ = server
    alice = _client(url, ALICE)
    tid = alice.threads.create()["thread_id"]
    episode = {"image": _image(scene_png), **episode}
    with pytest.raises(SpiralError) as local:
        check_start(episode, context)
    with pytest.raises(httpx.HTTPStatusError) as refused:
        alice.runs.create(tid, "spiral", input=episode, context=context)
    assert refused.value.response.status_code == 400
    # word for word; only the list of registered backbones differs (this test process registers test doubles)
    detail = refused.value.response.json()["detail"]
    assert detail.split("; choose one of")[0] == str(local.value).split("; choose one of")[0]
    assert detail.startswith(str(local.value)[:40])


def test_errors_raised_inside_a_run_reach_the_client_with_their_message():
    """The server's serializer shows the message of RuntimeError subclasses (SpiralError is one) and
    hides others as "An internal error occurred"."""
    from langgraph_api.serde import default

    from spiral.tools.errors import LLMUnavailableError

    shown = default(LLMUnavailableError("the critic LLM at http://x failed after 2 retries"))
    assert shown == {"error": "LLMUnavailableError", "message": "the critic LLM at http://x failed after 2 retries"}
    assert default(KeyError("x"))["message"] != "An internal error occurred"  # builtins pass too
    assert default(ZeroDivisionError("x"))["message"] == "An internal error occurred"


def _get(url: str, token: str | None, path: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(url + path, headers=headers, timeout=60)


def _ledger(url: str, values: dict) -> dict:
    """The episode's ledger (outcomes, notes, frames): an artifact the state points at."""
    response = _get(url, ALICE, f"/spiral/artifacts/{values['ledger_ref']}")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    return response.json()


def test_clients_download_artifacts_and_their_own_videos(server, scene_png):
    url, _ = server
    alice = _client(url, ALICE)
    tid = alice.threads.create()["thread_id"]
    alice.runs.wait(tid, "spiral", input={"action": "put the red ball in the bowl", "image": _image(scene_png)},
                    context={"difficulty": "easy"})
    values = alice.threads.get_state(tid)["values"]
    assert values["status"] == "done"
    ledger = _ledger(url, values)

    mp4 = _get(url, ALICE, f"/spiral/threads/{tid}/video")
    assert mp4.status_code == 200 and mp4.headers["content-type"] == "video/mp4" and mp4.content[4:8] == b"ftyp"
    gif = _get(url, ALICE, f"/spiral/threads/{tid}/video?format=gif")
    assert gif.status_code == 200 and gif.content[:6] == b"GIF89a"
    segment = ledger["outcomes"][0]["segment"]
    assert _get(url, ALICE, f"/spiral/artifacts/{segment}").content[:6] == b"GIF89a"
    raw = _get(url, ALICE, f"/spiral/artifacts/{segment}?format=npy")
    assert raw.status_code == 200 and raw.content[:6] == b"\x93NUMPY"
    frame = ledger["last_frame"]
    assert _get(url, ALICE, f"/spiral/artifacts/{frame}").content[:8] == b"\x89PNG\r\n\x1a\n"

    page = _get(url, ALICE, f"/spiral/threads/{tid}/report")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text.count("data-attempt=") >= 1 and 'id="status">done<' in page.text
    assert _get(url, BOB, f"/spiral/threads/{tid}/report").status_code == 404  # not bob's thread either
    assert _get(url, BOB, f"/spiral/threads/{tid}/video").status_code == 404  # not bob's thread
    assert _get(url, None, f"/spiral/artifacts/{frame}").status_code == 401
    assert _get(url, ALICE, "/spiral/artifacts/sha256:..%2F..%2Fetc%2Fpasswd").status_code in (400, 404)
    assert _get(url, ALICE, "/spiral/artifacts/sha256:..passwd").status_code == 400
    assert _get(url, ALICE, "/spiral/artifacts/sha256:" + "0" * 64 + ".png").status_code == 404


def test_reflective_memory_uses_the_server_store(server, scene_png):
    url, _ = server
    alice = _client(url, ALICE)
    notes = []
    for seed in (2, 3):  # seed 2 fails then fixes a step (a lesson); the next episode starts from it
        tid = alice.threads.create()["thread_id"]
        alice.runs.wait(tid, "spiral", input={"action": ACTION, "image": _image(scene_png)},
                        context={"difficulty": "hard", "memory": "reflective", "seed": seed})
        values = alice.threads.get_state(tid)["values"]
        assert values["status"] in ("done", "partial")
        notes.append(next(n for n in _ledger(url, values)["notes"] if n.startswith("reflective memory")))
    assert notes[0].startswith("reflective memory: 0 of") and not notes[1].startswith("reflective memory: 0 of")


def test_studio_forms_are_the_input_and_run_context(server):
    url, _ = server
    alice = _client(url, ALICE)
    assistant = next(a for a in alice.assistants.search(graph_id="spiral"))
    schemas = alice.assistants.get_schemas(assistant["assistant_id"])
    assert set(schemas["input_schema"]["properties"]) == {"action", "image"}
    assert "base64" in schemas["input_schema"]["properties"]["image"]["description"]
    context = schemas["context_schema"]["properties"]
    assert {"backbone", "planner", "critic", "max_tries_per_segment", "max_generator_calls", "review"} <= set(context)
    assert set(schemas["output_schema"]["properties"]) == {"status", "video", "summary"}
    graph = alice.assistants.get_graph(assistant["assistant_id"])
    assert {n["id"] for n in graph["nodes"]} >= {"plan", "generate", "critique", "review", "refine", "advance"}


def test_the_dev_server_trusts_studio_requests_as_documented(server):
    """docs/deploy.md warns that `langgraph dev` lets Studio in without a token: pin that, so the
    warning is updated if LangGraph changes it."""
    url, _ = server
    studio = httpx.post(f"{url}/threads/search", json={}, headers={"x-auth-scheme": "langsmith"}, timeout=30)
    assert studio.status_code == 200
    assert httpx.post(f"{url}/threads/search", json={}, timeout=30).status_code == 401
