"""A whole episode with LLM agents through the real OpenAI client against a local scripted server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytestmark = pytest.mark.e2e
SECRET = "sk-spiral-TEST-SECRET-4242"

PLAN = {"sub_actions": [{"verb": "put_in", "subject": "red_ball", "target": "bowl",
                         "description": "put the red ball in the bowl",
                         "prompt": "Put the small red ball in the white bowl.",
                         "preconditions": ["on_table(red_ball)"], "postconditions": ["inside(red_ball, bowl)"]}]}
SCORES = {"action_completion": 1, "object_fidelity": 1, "temporal_consistency": 1, "physical_plausibility": 1,
          "visual_quality": 1}
FAIL = {**SCORES, "action_completion": 0.2, "passed": False, "failure": "incomplete",
        "feedback": "The ball stopped short of the bowl.", "suggestion": "Say all the way."}
PASS = {**SCORES, "passed": True, "failure": None, "feedback": "The ball is in the bowl."}


class ScriptedOpenAI:
    """Speaks enough of the chat-completions protocol; replies per agent from a script."""

    def __init__(self, script: dict[str, list], port: int = 0) -> None:
        self.script = {k: list(v) for k, v in script.items()}
        self.bodies: list[dict] = []
        self.auth: set[str] = set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                outer.bodies.append(body)
                outer.auth.add(self.headers.get("authorization", ""))
                text = json.dumps(body["messages"])
                role = "planner" if "PlanAgent" in text else "critic" if "CriticAgent" in text else "refiner"
                step = outer.script[role].pop(0) if len(outer.script[role]) > 1 else outer.script[role][0]
                if step == 429:
                    self._send(429, {"error": {"message": "slow down", "type": "rate_limit"}}, {"retry-after": "0"})
                    return
                if isinstance(step, tuple):  # (delay seconds, reply)
                    time.sleep(step[0])
                    step = step[1]
                if step == NO_CHOICES:
                    choices = []
                elif isinstance(step, dict) and "refusal" in step:
                    choices = [{"index": 0, "finish_reason": "stop",
                                "message": {"role": "assistant", "content": None, "refusal": step["refusal"]}}]
                else:
                    content = step if isinstance(step, str) else json.dumps(step)
                    choices = [{"index": 0, "finish_reason": "stop",
                                "message": {"role": "assistant", "content": content}}]
                self._send(200, {"id": "chatcmpl-1", "object": "chat.completion", "created": 0,
                                 "model": body["model"], "choices": choices,
                                 "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70}})

            def _send(self, code, payload, headers=None):
                raw = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


NO_CHOICES = "reply with an empty choices list"


def spiral(*args, env=None, timeout=180):
    return subprocess.run([sys.executable, "-m", "spiral.shell.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture
def llm_env(monkeypatch):
    import os

    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    return dict(os.environ)


def _run_args(scene_png, tmp_path, port, *extra):
    return ["run", "--image", str(scene_png), "--action", "put the red ball in the bowl", "--planner", "llm",
            "--critic", "llm", "--llm-model", "qwen2.5-vl", "--base-url", f"http://127.0.0.1:{port}/v1",
            "--difficulty", "easy", "--thread-id", "llm", "--workspace", str(tmp_path / "ws"),
            "--out", str(tmp_path / "out"), *extra]


def test_episode_through_a_local_openai_compatible_server(scene_png, tmp_path, llm_env):
    script = {"planner": ["{not json", PLAN], "critic": [429, FAIL, (0.5, PASS)],
              "refiner": [{"instruction": "Pick up the small red ball and place it all the way inside the white bowl."}]}
    with ScriptedOpenAI(script) as server:  # the key is configured for this server, so it is sent there
        env = {**llm_env, "OPENAI_BASE_URL": f"http://127.0.0.1:{server.port}/v1"}
        res = spiral(*_run_args(scene_png, tmp_path, server.port, "--llm-timeout", "10"), env=env)
    assert res.returncode == 0, res.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["status"] == "done" and summary["generator_calls"] == 2
    assert summary["attempts"][1]["prompt"].startswith("Pick up the small red ball")  # the LLM's rewrite
    # what the server saw: images attached, a JSON schema requested, the validation error fed back
    planner = [b for b in server.bodies if "PlanAgent" in json.dumps(b["messages"])]
    critic = [b for b in server.bodies if "CriticAgent" in json.dumps(b["messages"])]
    assert len(planner) == 2 and "not valid" in json.dumps(planner[1]["messages"])
    for body in planner[:1] + critic:
        parts = body["messages"][0]["content"]
        assert any(p.get("type") == "image_url" and p["image_url"]["url"].startswith("data:image/png;base64,")
                   for p in parts)
    assert all(b["response_format"]["type"] == "json_schema" for b in server.bodies)
    assert critic[0]["response_format"]["json_schema"]["name"] == "LLMCritiqueReply"
    assert server.auth == {f"Bearer {SECRET}"}
    # usage and latency are recorded per attempt
    from spiral.memory.traces import TraceDB

    db = TraceDB(tmp_path / "ws" / "traces.sqlite")
    first = db.attempts("llm")[0].usage
    assert first["critic_input_tokens"] >= 50 and first["critic_latency_s"] > 0 and first["refiner_tries"] == 1
    [plan] = db.plans("llm")
    assert plan.planner == "llm" and plan.usage["planner_tries"] == 2 and plan.fallback == ""
    # the key never reaches anything SPIRAL writes
    for path in [*(tmp_path / "ws").rglob("*"), *(tmp_path / "out").rglob("*")]:
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in res.stdout + res.stderr


def test_no_key_fails_before_any_work(scene_png, tmp_path, monkeypatch):
    import os

    env = dict(os.environ)
    env.pop("OPENAI_API_KEY", None)
    env.pop("OPENAI_BASE_URL", None)
    args = _run_args(scene_png, tmp_path, 9)
    at = args.index("--base-url")
    res = spiral(*args[:at], *args[at + 2:], env=env)  # OpenAI's own API, which needs the key
    assert res.returncode != 0 and "OPENAI_API_KEY is not set" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "ws").exists()


def test_unreachable_server_then_resume(scene_png, tmp_path, llm_env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    res = spiral(*_run_args(scene_png, tmp_path, port, "--llm-retries", "1", "--llm-timeout", "2"), env=llm_env)
    assert res.returncode != 0 and "failed after 1 retries" in res.stderr and "Traceback" not in res.stderr
    assert time.perf_counter() - t0 < 60
    assert (tmp_path / "ws" / "checkpoints.sqlite").exists()
    with ScriptedOpenAI({"planner": [PLAN], "critic": [PASS], "refiner": ['{"instruction": "x x x x x"}']},
                        port=port):
        again = spiral("resume", "llm", "--workspace", str(tmp_path / "ws"), env=llm_env)
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["status"] == "done"


def test_empty_choices_and_refusals_fall_back_and_are_recorded(scene_png, tmp_path, llm_env):
    """A 200 reply with no `choices` is retried then falls back (not an IndexError from inside
    langchain); a refusal falls back at once and is recorded as the refusal it was."""
    script = {"planner": [NO_CHOICES], "critic": [{"refusal": "I can't help with judging videos."}],
              "refiner": ['{"instruction": "x x x x x"}']}
    with ScriptedOpenAI(script) as server:
        res = spiral(*_run_args(scene_png, tmp_path, server.port), env=llm_env)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    from spiral.memory.traces import TraceDB

    db = TraceDB(tmp_path / "ws" / "traces.sqlite")
    [plan] = db.plans("llm")
    assert plan.planner == "llm" and plan.usage["planner_tries"] == 3  # asked three times, then the rule planner
    assert "could not be read (IndexError" in plan.fallback
    first = db.attempts("llm")[0]
    assert first.critic == "perception" and first.usage["critic_tries"] == 1  # who judged it, in the end
    assert first.usage["critic_fallback"] == "the model refused: I can't help with judging videos."
    critic_calls = [b for b in server.bodies if "CriticAgent" in json.dumps(b["messages"])]
    assert len(critic_calls) == len(db.attempts("llm"))  # one call per attempt: a refusal is not asked again


def _photo_png(tmp_path):
    """A stand-in for a photograph (bench/scene_fit_cases.py's), 64 px."""
    from PIL import Image

    from spiral.bench.scene_fit_cases import photo_like

    path = tmp_path / "photo.png"
    Image.fromarray(photo_like(3, size=64)).save(path)
    return path


MUG_PLAN = {"sub_actions": [{"verb": "put_in", "subject": "red_mug", "target": "wooden_tray",
                             "description": "put the red mug on the wooden tray",
                             "prompt": "Put the red mug on the wooden tray.",
                             "preconditions": [], "postconditions": ["inside(red_mug, wooden_tray)"]}]}


@pytest.mark.parametrize("agents,readers", [([], "The sim backbone, the rule planner, the perception critic"),
                                            (["--backbone", "tiny-wan", "--frames", "5", "--height", "64", "--width",
                                              "64", "--steps", "2"], "The rule planner, the perception critic")])
def test_a_photo_is_refused_in_one_line_by_the_offline_readers(tmp_path, agents, readers):
    res = spiral("run", "--image", str(_photo_png(tmp_path)), "--action", "put the red ball in the bowl",
                 "--workspace", str(tmp_path / "ws"), *agents)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert lines[0].startswith("spiral: error: the start image does not look like SPIRAL's tabletop world: drawn "
                               "again from what perception read in it")
    assert f"{readers} read only that world (make one with `spiral scene`); for other images use a real backbone " \
           "with --planner llm --critic llm" in lines[0]


def test_the_same_photo_runs_with_a_real_backbone_and_llm_agents(tmp_path, llm_env):
    script = {"planner": [MUG_PLAN], "critic": [PASS], "refiner": [{"instruction": "unused"}]}
    with ScriptedOpenAI(script) as server:
        res = spiral("run", "--image", str(_photo_png(tmp_path)), "--action", "put the red mug on the tray",
                     "--backbone", "tiny-wan", "--frames", "5", "--height", "64", "--width", "64", "--steps", "2",
                     "--planner", "llm", "--critic", "llm", "--llm-model", "qwen2.5-vl",
                     "--base-url", f"http://127.0.0.1:{server.port}/v1", "--workspace", str(tmp_path / "ws"),
                     "--out", str(tmp_path / "out"), env=llm_env)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["status"] == "done" and [s["subject"] for s in summary["plan"]] == ["red_mug"]
    assert summary["notes"][0].startswith("start image outside the tabletop world (drawn again from what perception")
    planner = [b for b in server.bodies if "PlanAgent" in json.dumps(b["messages"])]
    assert "nothing was read from it; name each object you see" in json.dumps(planner[0]["messages"])
