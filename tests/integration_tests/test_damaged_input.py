"""Damaged files, hostile paths, odd environments and non-finite numbers: one line, exit 2, nothing written.

Each case starts from a copy of a workspace holding one finished episode (`good`), damages or sets one
thing, runs one `spiral` command in this process and checks: exactly one stderr line naming the input, the
exit code, no traceback (an exception would fail the test), and every file of the workspace as it was
(the damaged file included: nothing was repaired, truncated or half-written behind the user's back).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from spiral.graph.session import Session
from spiral.shell.cli import main
from spiral.tools.media import save_png
from spiral.tools.world.render import render_scene
from spiral.vocabulary.config import RunContext

pytestmark = pytest.mark.e2e
ACTION = "put the red ball in the bowl"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A workspace with one finished episode, and its start image."""
    from spiral.tools.world.scene import Scene
    from tests.conftest import obj

    root = tmp_path_factory.mktemp("damaged")
    scene = Scene(objects=[obj("bowl", "bowl", "white", 90, 50), obj("red_ball", "ball", "red", 30, 40, "small"),
                           obj("blue_cube", "cube", "blue", 40, 90, "medium")])
    image = save_png(render_scene(scene), root / "start.png")
    with Session(root / "ws") as session:
        session.start(ACTION, str(image), RunContext(difficulty="easy", write_video=False), "good")
    for database in (root / "ws").glob("*.sqlite"):  # everything into the main files: their bytes are the data
        conn = sqlite3.connect(database)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
    return root / "ws", image


def _files(workspace: Path) -> dict[str, str]:
    """Every file's content hash (SQLite's -wal/-shm companions and the lease aside: opening a database
    makes them)."""
    return {str(p.relative_to(workspace)): hashlib.sha256(p.read_bytes()).hexdigest() for p in workspace.rglob("*")
            if p.is_file() and not p.name.endswith(("-wal", "-shm")) and p.name != ".lease"}


def _all_artifacts(ws: Path) -> list[Path]:
    return sorted(p for p in (ws / "artifacts").glob("*/*") if p.is_file())


def env(name: str, value: str) -> Callable[[Path], None]:
    """Set an environment variable for this case (the test's monkeypatch undoes it)."""
    def set_it(ws: Path) -> None:
        ENV_FOR_CASE[name] = value
    return set_it


ENV_FOR_CASE: dict[str, str] = {}


def garbage(relative: str, data: bytes = b"this is not a database, it is garbage" * 8) -> Callable[[Path], None]:
    return lambda ws: (ws / relative).write_bytes(data)


def truncated(relative: str, size: int = 4096) -> Callable[[Path], None]:
    def cut(ws: Path) -> None:
        path = ws / relative
        for companion in (Path(f"{path}-wal"), Path(f"{path}-shm")):
            companion.unlink(missing_ok=True)
        with open(path, "r+b") as fh:
            fh.truncate(size)
    return cut


def artifacts_overwritten(ws: Path) -> None:
    for path in _all_artifacts(ws):
        path.write_bytes(b"\x28\xb5\x2f\xfd" + b"garbage" * 3)


def nothing(ws: Path) -> None:
    pass


def lora(kind: str) -> Callable[[Path], None]:
    """A LoRA folder next to the workspace (`lora/`), made wrong in one way."""
    def make(ws: Path) -> None:
        folder = ws.parent / "lora"
        folder.mkdir(exist_ok=True)
        card = {"backbone": "tiny-wan", "base_model": "x", "rank": 4, "alpha": 4.0, "targets": ["to_q"],
                "method": "grpo", "optimizer_steps": 1}
        (folder / "spiral_adapter.json").write_text("{not json" if kind == "card" else json.dumps(card))
        weights = folder / "pytorch_lora_weights.safetensors"
        if kind == "truncated":
            weights.write_bytes((1024).to_bytes(8, "little") + b'{"a": {"dtype": "F32", "shape": [64], '
                                b'"data_offsets": [0, 256]}}' + b" " * 40)
        elif kind == "garbage":
            weights.write_bytes(b"\x00garbage, not safetensors")
        elif kind == "card":
            weights.write_bytes(b"")
    return make


def prompts(text: bytes) -> Callable[[Path], None]:
    def make(ws: Path) -> None:
        folder = ws.parent / "prompts"
        folder.mkdir(exist_ok=True)
        (folder / "planner.md").write_bytes(text)
    return make


def train_state(ws: Path) -> None:
    """A pre-training folder whose saved autoencoder state is cut short."""
    state = ws.parent / "pre-out" / "state"
    state.mkdir(parents=True)
    (state / "vae.pt").write_bytes(b"PK\x03\x04 cut short")


RUN = ["run", "--action", ACTION, "--no-write-video"]
# (name, damage, argv after the workspace is known, expected text, exit code)
CASES: list[tuple[str, Callable[[Path], None], Callable[[Path, Path], list[str]], str, int]] = [
    *[(f"checkpoints garbage: {cmd[0]}", garbage("checkpoints.sqlite"), cmd_of, "checkpoints.sqlite is damaged", 2)
      for cmd, cmd_of in [
          (["run"], lambda ws, img: [*RUN, "--image", str(img), "--workspace", str(ws)]),
          (["resume"], lambda ws, img: ["resume", "good", "--workspace", str(ws)]),
          (["history"], lambda ws, img: ["history", "good", "--workspace", str(ws)]),
          (["gc"], lambda ws, img: ["gc", "--workspace", str(ws)]),
          (["report"], lambda ws, img: ["report", "good", "--workspace", str(ws), "--out", str(ws.parent / "r.html")]),
          (["fork"], lambda ws, img: ["fork", "good", "--checkpoint", "x", "--workspace", str(ws)])]],
    *[(f"checkpoints truncated: {name}", truncated("checkpoints.sqlite"), cmd_of, "is damaged", 2)
      for name, cmd_of in [
          ("run", lambda ws, img: [*RUN, "--image", str(img), "--workspace", str(ws)]),
          ("resume", lambda ws, img: ["resume", "good", "--workspace", str(ws)]),
          ("history", lambda ws, img: ["history", "good", "--workspace", str(ws)]),
          ("gc", lambda ws, img: ["gc", "--workspace", str(ws)])]],
    ("checkpoints emptied: gc", garbage("checkpoints.sqlite", b""), lambda ws, img: ["gc", "--workspace", str(ws)],
     "holds no tables", 2),
    *[(f"traces garbage: {name}", garbage("traces.sqlite"), cmd_of, "traces.sqlite is damaged", 2)
      for name, cmd_of in [
          ("run", lambda ws, img: [*RUN, "--image", str(img), "--workspace", str(ws)]),
          ("traces ls", lambda ws, img: ["traces", "ls", "--workspace", str(ws)]),
          ("traces show", lambda ws, img: ["traces", "show", "good", "--workspace", str(ws)]),
          ("gc", lambda ws, img: ["gc", "--workspace", str(ws)]),
          ("report", lambda ws, img: ["report", "good", "--workspace", str(ws), "--out", str(ws.parent / "r.html")])]],
    *[(f"traces truncated: {name}", truncated("traces.sqlite", 8192), cmd_of, "is damaged", 2)
      for name, cmd_of in [
          ("traces ls", lambda ws, img: ["traces", "ls", "--workspace", str(ws)]),
          ("run", lambda ws, img: [*RUN, "--image", str(img), "--workspace", str(ws)])]],
    ("lessons store garbage: reflective run", garbage("memory.sqlite"),
     lambda ws, img: [*RUN, "--image", str(img), "--workspace", str(ws), "--memory", "reflective"],
     "memory.sqlite is damaged", 2),
    ("artifacts overwritten: report", artifacts_overwritten,
     lambda ws, img: ["report", "good", "--workspace", str(ws), "--out", str(ws.parent / "r.html")], "is damaged", 2),
    # hostile output paths
    ("run --out under /proc", nothing, lambda ws, img: [*RUN, "--image", str(img), "--workspace", str(ws), "--out",
                                                       "/proc/self/spiral-out"], "cannot write in /proc/", 2),
    ("scene --out an existing folder", nothing, lambda ws, img: ["scene", "--out", str(ws)], "is a folder", 2),
    ("scene --out under /proc", nothing, lambda ws, img: ["scene", "--out", "/proc/self/x.png"], "cannot write in", 2),
    ("report --out an existing folder", nothing,
     lambda ws, img: ["report", "good", "--workspace", str(ws), "--out", str(ws)], "is a folder", 2),
    ("traces export --out a folder", nothing,
     lambda ws, img: ["traces", "export", "--out", str(ws), "--workspace", str(ws)], "is a folder", 2),
    # odd workspaces
    ("workspace a symlink loop", nothing, lambda ws, img: [*RUN, "--image", str(img), "--workspace",
                                                          str(_loop(ws.parent))], "loop", 2),
    ("workspace under /proc", nothing,
     lambda ws, img: [*RUN, "--image", str(img), "--workspace", "/proc/self/ws"], "is read-only for this user", 1),
    # numbers that are not numbers
    ("--guidance inf", nothing, lambda ws, img: [*RUN, "--image", str(img), "--workspace", str(ws), "--guidance",
                                                "inf"], "--guidance: Input should be a finite number", 2),
    ("--guidance nan", nothing, lambda ws, img: [*RUN, "--image", str(img), "--workspace", str(ws), "--guidance",
                                                "nan"], "--guidance: Input should be a finite number", 2),
    ("--llm-timeout inf", nothing, lambda ws, img: [*RUN, "--image", str(img), "--workspace", str(ws),
                                                   "--llm-timeout", "inf"], "--llm-timeout: Input should be a finite", 2),
    ("--temperature nan", nothing, lambda ws, img: [*RUN, "--image", str(img), "--workspace", str(ws),
                                                   "--temperature", "nan"], "--temperature: Input should be a finite", 2),
    # environments
    ("SPIRAL_DATABASE_URI garbage", env("SPIRAL_DATABASE_URI", "garbage"),
     lambda ws, img: [*RUN, "--image", str(img), "--workspace", str(ws)], "SPIRAL_DATABASE_URI must be a PostgreSQL", 2),
    ("SPIRAL_DATABASE_URI another database", env("SPIRAL_DATABASE_URI", "mysql://u:p@h/db"),
     lambda ws, img: ["history", "good", "--workspace", str(ws)], "SPIRAL_DATABASE_URI must be a PostgreSQL", 2),
    ("OPENAI_API_KEY with a newline", env("OPENAI_API_KEY", "sk-a\nb"),
     lambda ws, img: [*RUN, "--image", str(img), "--workspace", str(ws), "--planner", "llm"], "OPENAI_API_KEY holds", 2),
    ("OPENAI_API_KEY not ASCII", env("OPENAI_API_KEY", "sk-ключ"),
     lambda ws, img: [*RUN, "--image", str(img), "--workspace", str(ws), "--critic", "llm"], "OPENAI_API_KEY holds", 2),
    ("HTTPS_PROXY garbage", env("HTTPS_PROXY", "::garbage::"),
     lambda ws, img: [*RUN, "--image", str(img), "--workspace", str(ws), "--planner", "llm", "--base-url",
                      "http://127.0.0.1:9/v1"], "HTTPS_PROXY", 2),
    ("ALL_PROXY SOCKS without socksio", env("ALL_PROXY", "socks5://127.0.0.1:1080"),
     lambda ws, img: [*RUN, "--image", str(img), "--workspace", str(ws), "--planner", "llm", "--base-url",
                      "http://127.0.0.1:9/v1"], "SOCKS", 2),
    ("HTTP_PROXY without a host", env("HTTP_PROXY", "http://:3128"),
     lambda ws, img: [*RUN, "--image", str(img), "--workspace", str(ws), "--planner", "llm", "--base-url",
                      "http://127.0.0.1:9/v1"], "HTTP_PROXY", 2),
    # prompt templates
    *[(f"prompt template: {name}", prompts(text),
       lambda ws, img: [*RUN, "--image", str(img), "--workspace", str(ws), "--planner", "llm", "--base-url",
                        "http://127.0.0.1:9/v1", "--prompts-dir", str(ws.parent / "prompts")], expected, 2)
      for name, text, expected in [("an unclosed brace", b"Plan {objects", "expected '}'"),
                                   ("an unknown field", b"Plan {objects} for {user}", "uses user"),
                                   ("a positional field", b"Plan {} now", "uses {}"),
                                   ("not UTF-8", b"Plan \xff\xfe {objects}", "is not UTF-8")]],
    # adapters
    *[(f"LoRA {kind}", lora(kind),
       lambda ws, img: [*RUN, "--image", str(img), "--workspace", str(ws), "--backbone", "tiny-wan", "--frames", "9",
                        "--lora", str(ws.parent / "lora")], expected, 2)
      for kind, expected in [("card", "spiral_adapter.json is unreadable"), ("garbage", "not a readable safetensors"),
                             ("truncated", "shorter than its header says")]],
    # training options and state
    *[(f"train grpo {' '.join(flags)}", nothing,
       lambda ws, img, flags=flags: ["train", "grpo", "--workspace", str(ws), "--out", str(ws.parent / "t"), *flags],
       expected, 2)
      for flags, expected in [(["--lr", "inf"], "--lr: Input should be a finite number"),
                              (["--lr", "nan"], "--lr: Input should be a finite number"),
                              (["--epochs", "0"], "--epochs: Input should be greater than or equal to 1"),
                              (["--epochs", "-1"], "--epochs: Input should be greater than or equal to 1"),
                              (["--reward", "success=nan"], "finite number"),
                              (["--reward-missing", "evidence:goal_distance=inf", "--reward",
                                "evidence:goal_distance=-0.01"], "finite number")]],
    *[(f"train pretrain {' '.join(flags)}", nothing,
       lambda ws, img, flags=flags: ["train", "pretrain", "--out", str(ws.parent / "p"), *flags], expected, 2)
      for flags, expected in [(["--lr", "inf"], "--lr: Input should be a finite number"),
                              (["--ema", "1.5"], "--ema: Input should be less than 1"),
                              (["--max-minutes", "nan"], "--max-minutes must be a positive number"),
                              (["--vae-crop", "50"], "--vae-crop: Input should be a multiple of 8")]],
    ("train pretrain resuming a damaged state", train_state,
     lambda ws, img: ["train", "pretrain", "--out", str(ws.parent / "pre-out"), "--examples", "72"],
     "vae.pt is damaged", 2),
    ("the largest documented segment", nothing,
     lambda ws, img: [*RUN, "--image", str(img), "--workspace", str(ws), "--frames", "257", "--height", "2048",
                      "--width", "2048"], "lower --frames, --height or --width", 2),
]


def _loop(root: Path) -> Path:
    link = root / "loop"
    if not link.is_symlink():
        link.symlink_to(link)
    return link


@pytest.mark.parametrize("name,damage,argv,expected,code", CASES, ids=[c[0] for c in CASES])
def test_one_line_and_nothing_written(finished, tmp_path, capsys, monkeypatch, name, damage, argv, expected, code):
    workspace, image = finished
    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws)
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "SPIRAL_DATABASE_URI"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    ENV_FOR_CASE.clear()
    damage(ws)
    for name, value in ENV_FOR_CASE.items():
        monkeypatch.setenv(name, value)
    before = _files(ws)
    monkeypatch.chdir(tmp_path)
    assert main(argv(ws, image)) == code
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("spiral: error: ") and expected in err[0], err
    assert _files(ws) == before
