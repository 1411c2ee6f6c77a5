"""`spiral scene` writes a start image, says what is in it and a command that runs on it."""

import shlex

import pytest

from spiral.shell.cli import main

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("args,holds,action", [
    ([], "bowl, small red ball, red cube, medium red ball, blue block, yellow cube, green ball",
     "put all red objects in the bowl, then stack the yellow cube on the blue block"),
    (["--task", "test-0004"], None, "put all green objects in the bowl"),
    (["--random", "3", "--seed", "3"], None, None),
    (["--objects", "green cube, plate"], "green cube, plate", "put the green cube on the plate"),
])
def test_a_scene_and_the_command_it_suggests_run(args, holds, action, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["scene", *args]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert (tmp_path / "start.png").stat().st_size > 0
    if holds:
        assert out.startswith(f"start.png: {holds} (128x128)")
    suggestion = shlex.split(out.split("try: ")[1])
    assert suggestion[:4] == ["spiral", "run", "--image", "start.png"]
    if action:
        assert suggestion[5] == action
    assert main([*suggestion[1:], "--workspace", "ws", "--no-write-video"]) == 0  # seed 0: each one is done
    assert "spiral: error" not in capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["--task", "test-9999"], "the test split has tasks test-0000 to test-0119"),
    (["--task", "nine"], "a task id is SPLIT-NUMBER"),
    (["--random", "0"], "choose 1 to 8 objects"),
    (["--size", "8"], "choose 32 to 1024 pixels"),
])
def test_bad_scene_requests_are_one_line(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["scene", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and not (tmp_path / "start.png").exists()
