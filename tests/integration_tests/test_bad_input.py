"""Bad input, table-driven, across the CLI, the Python API and the server's checks.

Each CLI case must end with exactly one stderr line, `spiral: error: ...` naming the problem, a
non-zero exit and no traceback; afterwards the workspace is as it was (the finished thread intact,
no new thread). The server refuses the same inputs before any node runs, with the same message
(shell/auth.py → `check_start`); tests/integration_tests/test_server.py sends a few over HTTP.
"""

from __future__ import annotations

import base64
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from spiral.graph.session import Session
from spiral.nodes.preflight import check_start
from spiral.shell.cli import main
from spiral.tools.errors import InputError, ResumeError, SpiralError, WorkspaceError
from spiral.tools.media import save_png
from spiral.tools.world.render import render_scene
from spiral.vocabulary.config import RunContext

ACTION = "put the red ball in the bowl then stack the blue cube on the green cube"


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height but holds almost nothing: opening it reads only the header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A workspace with one finished thread, `good`, and a folder of bad inputs."""
    from spiral.tools.world.scene import Scene
    from tests.conftest import obj

    root = tmp_path_factory.mktemp("bad-input")
    scene = Scene(objects=[obj("bowl", "bowl", "white", 90, 50), obj("red_ball", "ball", "red", 30, 40, "small"),
                           obj("blue_cube", "cube", "blue", 40, 90, "medium"),
                           obj("green_cube", "cube", "green", 95, 100, "large")])
    image = save_png(render_scene(scene), root / "start.png")
    with Session(root / "ws") as session:
        session.start(ACTION, str(image), RunContext(difficulty="easy", write_video=False), "good")
    (root / "huge.png").write_bytes(png_header_only(13500, 13500))
    (root / "large.png").write_bytes(png_header_only(10000, 10000))
    (root / "text.png").write_text("not an image")
    (root / "empty.png").write_bytes(b"")
    (root / "a-file").write_text("x")
    (root / "empty-prompts").mkdir()
    blank = save_png(render_scene(Scene(objects=[])), root / "blank.png")
    return root, image, blank


def run(world, *extra: str, image: str | None = None, action: str = ACTION) -> list[str]:
    root, start, _ = world
    return ["run", "--image", image if image is not None else str(start), "--action", action,
            "--workspace", str(root / "ws"), *extra]


OPTION_CASES: list[tuple[str, str]] = [  # run flags and the line they must give
    ("--max-tries 0", "--max-tries: Input should be greater than or equal to 1"),
    ("--max-calls 0", "--max-calls: Input should be greater than or equal to 1"),
    ("--max-replans 11", "--max-replans: Input should be less than or equal"),
    ("--temperature 5", "--temperature: Input should be less than or equal to 2"),
    ("--llm-retries 99", "--llm-retries: Input should be less than or equal"),
    ("--llm-timeout 0", "--llm-timeout: Input should be greater than 0"),
    (f"--seed {2**64}", "--seed: Input should be less than"),
    ("--seed -1", "--seed: Input should be greater than or equal to 0"),
    ("--frames 1", "--frames must be between 2 and 257"),
    ("--height 16", "--height/--width must be between 32 and 2048"),
    ("--width 99999", "--height/--width must be between 32 and 2048"),
    ("--fps 0", "--fps: Input should be greater than or equal to 1"),
    ("--steps 0", "--steps: Input should be greater than or equal to 1"),
    ("--guidance -1", "--guidance: Input should be greater than or equal to 0"),
    ("--sde-noise-level 3", "--sde-noise-level: Input should be less than"),
    ("--backbone nope", "unknown backbone 'nope'"),
    ("--difficulty impossible", "unknown difficulty 'impossible'"),
    ("--planner llm", "OPENAI_API_KEY is not set"),
    ("--prompts-dir /nowhere/at/all", "is not a folder"),
    ("--thread-id ../x", "is not a plain name"),
    ("--thread-id a|b", "is not a plain name"),
    ("--thread-id good", "already exists"),
]
CLI_CASES: list[tuple[str, object, str]] = [
    *[(flags, lambda w, flags=flags: run(w, *flags.split()), expected) for flags, expected in OPTION_CASES],
    ("prompts dir empty", lambda w: run(w, "--prompts-dir", str(w[0] / "empty-prompts")), "holds none of"),
    # images
    ("image missing", lambda w: run(w, image="/no/such.png"), "start image not found"),
    ("image 13500x13500", lambda w: run(w, image=str(w[0] / "huge.png")), "over the 40 MP"),
    ("image 10000x10000", lambda w: run(w, image=str(w[0] / "large.png")), "over the 40 MP"),
    ("image is text", lambda w: run(w, image=str(w[0] / "text.png")), "cannot read the start image"),
    ("image is empty", lambda w: run(w, image=str(w[0] / "empty.png")), "cannot read the start image"),
    ("image is a folder", lambda w: run(w, image=str(w[0])), "start image not found"),
    ("data URL without a comma", lambda w: run(w, image="data:image/png;base64"), "a data URL is"),
    ("data URL, bad base64", lambda w: run(w, image="data:image/png;base64,@@@"), "cannot read the start image"),
    ("data URL, not an image", lambda w: run(w, image="data:image/png;base64," + base64.b64encode(b"hi").decode()),
     "cannot read the start image"),
    ("image URL nobody serves", lambda w: run(w, image="http://127.0.0.1:9/start.png"), "cannot download"),
    ("image with no objects", lambda w: run(w, image=str(w[2])), "no objects found"),
    # actions
    ("empty action", lambda w: run(w, action=""), "the action is empty"),
    ("action outside the grammar", lambda w: run(w, action="do a barrel roll"), "cannot parse"),
    ("action names a missing object", lambda w: run(w, action="put the purple whale in the bowl"), "purple"),
    # paths, threads, workspaces
    ("workspace is a file", lambda w: [*run(w)[:-2], "--workspace", str(w[0] / "a-file")], "is a file, not a folder"),
    ("out is a file", lambda w: run(w, "--out", str(w[0] / "a-file")), "is a file, not a folder"),
    # resume, history, fork, traces
    ("resume unknown thread", lambda w: ["resume", "nope", "--workspace", str(w[0] / "ws")], "no thread 'nope'"),
    ("approve a thread not waiting", lambda w: ["resume", "good", "--approve", "--workspace", str(w[0] / "ws")],
     "is not waiting for a review"),
    ("resume without checkpoints", lambda w: ["resume", "good", "--workspace", str(w[0] / "elsewhere")],
     "no checkpoints in"),
    ("history unknown thread", lambda w: ["history", "nope", "--workspace", str(w[0] / "ws")], "no thread 'nope'"),
    ("fork unknown checkpoint", lambda w: ["fork", "good", "--checkpoint", "nope", "--workspace", str(w[0] / "ws")],
     "no checkpoint nope"),
    ("fork at the first checkpoint", lambda w: ["fork", "good", "--checkpoint", first_checkpoint(w[0] / "ws"),
                                                "--workspace", str(w[0] / "ws")], "before the episode's first step"),
    ("traces of an unknown thread", lambda w: ["traces", "show", "nope", "--workspace", str(w[0] / "ws")],
     "no attempts recorded"),
    ("traces without a database", lambda w: ["traces", "ls", "--workspace", str(w[0] / "elsewhere")],
     "no trace database"),
]


def first_checkpoint(workspace: Path) -> str:
    with Session(workspace) as session:
        return session.history("good")[-1].checkpoint_id


def threads_in(workspace: Path) -> list[str]:
    import sqlite3

    conn = sqlite3.connect(workspace / "checkpoints.sqlite")
    try:
        return sorted(r[0] for r in conn.execute("select distinct thread_id from checkpoints"))
    finally:
        conn.close()


@pytest.mark.parametrize("name,argv,expected", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_the_cli_says_one_line(world, capsys, monkeypatch, name, argv, expected):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code = main(argv(world))
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code != 0 and len(err) == 1, err
    assert err[0].startswith("spiral: error: ") and expected in err[0], err[0]
    assert threads_in(world[0] / "ws") == ["good"]  # nothing started, nothing corrupted
    with Session(world[0] / "ws") as session:
        assert session.state("good").status == "done"


def test_there_are_at_least_forty_cases():
    assert len(CLI_CASES) + len(API_CASES) + len(SERVER_CASES) >= 40 and len(CLI_CASES) >= 40


API_CASES: list[tuple[str, object, type, str]] = [
    ("start with an empty action", lambda w, s: s.start("", str(w[1]), RunContext()), InputError, "empty"),
    ("start with a missing image", lambda w, s: s.start(ACTION, "/no.png", RunContext()), InputError, "not found"),
    ("start with a bad thread id", lambda w, s: s.start(ACTION, str(w[1]), RunContext(), "a/b"), InputError,
     "plain name"),
    ("start an existing thread", lambda w, s: s.start(ACTION, str(w[1]), RunContext(), "good"), InputError,
     "already exists"),
    ("resume an unknown thread", lambda w, s: s.resume("nope"), ResumeError, "no thread"),
    ("fork at an unknown checkpoint", lambda w, s: s.fork("good", "nope"), ResumeError, "no checkpoint"),
    ("unknown backbone", lambda w, s: s.start(ACTION, str(w[1]), RunContext(backbone="nope")), InputError,
     "unknown backbone"),
]


@pytest.mark.parametrize("name,call,error,expected", API_CASES, ids=[c[0] for c in API_CASES])
def test_the_python_api_raises_one_spiral_error(world, name, call, error, expected):
    with Session(world[0] / "ws") as session:
        with pytest.raises(error, match=expected):
            call(world, session)
    assert threads_in(world[0] / "ws") == ["good"]


def test_a_session_on_a_file_is_refused(world):
    with pytest.raises(WorkspaceError, match="is a file"):
        Session(world[0] / "a-file")


SERVER_CASES: list[tuple[str, object, dict, str]] = [
    ("bad action", lambda w: {"action": "do a barrel roll", "image": str(w[1])}, {}, "cannot parse"),
    ("missing image", lambda w: {"action": ACTION, "image": "/no.png"}, {}, "start image not found"),
    ("no image field", lambda w: {"action": ACTION}, {}, "input.image: Field required"),
    ("unknown backbone", lambda w: {"action": ACTION, "image": str(w[1])}, {"backbone": "nope"}, "unknown backbone"),
    ("out-of-range budget", lambda w: {"action": ACTION, "image": str(w[1])}, {"max_tries_per_segment": 0},
     "max_tries_per_segment: Input should be greater than or equal to 1"),
    ("unknown context field", lambda w: {"action": ACTION, "image": str(w[1])}, {"max_tries": 3},
     "unknown run-context field 'max_tries'"),
    ("a resume with a bad context", lambda w: None, {"seed": -1}, "seed: Input should be greater than or equal to 0"),
]


@pytest.mark.parametrize("name,episode,context,expected", SERVER_CASES, ids=[c[0] for c in SERVER_CASES])
def test_the_server_checks_refuse_before_any_node(world, monkeypatch, name, episode, context, expected):
    monkeypatch.setenv("SPIRAL_HOME", str(world[0] / "server-ws"))
    with pytest.raises(SpiralError, match=expected):
        check_start(episode(world), context)
    assert not (world[0] / "server-ws").exists()  # refused before anything was written


def test_the_server_and_the_cli_say_the_same(world, capsys):
    """The message is the CLI's, word for word, for the same input."""
    main(run(world, action="do a barrel roll"))
    cli = capsys.readouterr().err.strip().removeprefix("spiral: error: ")
    with pytest.raises(SpiralError) as refused:
        check_start({"action": "do a barrel roll", "image": str(world[1])}, {})
    assert str(refused.value) == cli


@pytest.fixture
def read_only_workspace(world, tmp_path):
    """A copy of the workspace that this process cannot write: chmod for a normal user, a read-only
    bind mount for root (which ignores permission bits)."""
    import os

    copy = tmp_path / "ro"
    shutil.copytree(world[0] / "ws", copy)
    if os.geteuid() != 0:
        for path in [copy, *copy.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
        yield copy
        for path in [copy, *copy.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
        return
    view = tmp_path / "ro-view"
    view.mkdir()
    if subprocess.run(["mount", "--bind", str(copy), str(view)], capture_output=True).returncode != 0:
        pytest.skip("cannot make a read-only folder here (root without mount)")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True, capture_output=True)
        yield view
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False)


def test_reading_commands_work_on_a_read_only_workspace_and_writing_ones_say_why(world, read_only_workspace,
                                                                                    capsys):
    ws = str(read_only_workspace)
    assert main(["traces", "ls", "--workspace", ws]) == 0
    assert "good" in capsys.readouterr().out
    assert main(["traces", "show", "good", "--workspace", ws]) == 0
    assert main(["history", "good", "--workspace", ws]) == 0
    assert "__start__" in capsys.readouterr().out
    assert main(["gc", "--dry-run", "--workspace", ws]) == 0
    capsys.readouterr()
    for argv in (run(world)[:-2] + ["--workspace", ws], ["resume", "good", "--approve", "--workspace", ws],
                 ["gc", "--workspace", ws]):
        assert main(argv) != 0
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and "read-only" in err[0], err
