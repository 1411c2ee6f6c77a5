"""The README's Python example runs as written, and its graph drawing is the live graph's."""

import re
from pathlib import Path

import pytest

from spiral.shell.drawing import readme_block
from spiral.tools.media import save_png
from spiral.tools.world.demo import demo_scene
from spiral.tools.world.render import render_scene

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_drawing_is_the_compiled_graph():
    assert readme_block() in README.read_text(), "run `spiral graph --readme README.md`"


def test_readme_streaming_example_runs(tmp_path, monkeypatch, capsys):
    example = re.search(r"```python\n(from langgraph.types import Command\n.*?)```", README.read_text(), re.S)
    assert example
    monkeypatch.chdir(tmp_path)
    save_png(render_scene(demo_scene()), tmp_path / "start.png")
    exec(compile(example.group(1), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "generator_progress" in out and "critique" in out
    assert out.strip().splitlines()[-1].startswith(("done", "partial"))


def test_readme_session_example_runs(tmp_path, monkeypatch, capsys):
    example = re.search(r"```python\n(from spiral.vocabulary.config import RunContext\nfrom spiral.vocabulary.events.*?)```",
                        README.read_text(), re.S)
    assert example
    monkeypatch.chdir(tmp_path)
    save_png(render_scene(demo_scene()), tmp_path / "start.png")
    exec(compile(example.group(1), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "plan=Plan(" in out and "attempt=Attempt(" in out and "event='generator_progress'" in out
    assert out.strip().splitlines()[-1].startswith("done ") and out.strip().endswith("video.mp4")


@pytest.mark.e2e
def test_readme_first_scene_and_runs_work_as_written(tmp_path, monkeypatch, capsys):
    """Every command of the README's own-start-image block, as written, from an empty folder."""
    import shlex

    from spiral.shell.cli import main

    block = re.search(r"Your own start image and action:\n\n```bash\n(.*?)```", README.read_text(), re.S)
    assert block
    commands = [shlex.split(line.split("  #")[0]) for line in block.group(1).splitlines() if line.strip()]
    assert [c[:2] for c in commands] == [["spiral", "scene"], ["spiral", "run"], ["spiral", "run"]]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPIRAL_HOME", str(tmp_path / "home"))
    assert main(commands[0][1:]) == 0
    assert "start.png: blue cube, red ball, bowl, green cube (128x128)" in " ".join(capsys.readouterr().out.split())
    for command in commands[1:]:
        assert main(command[1:]) == 0, capsys.readouterr().out[-3000:]
        assert "[done]" in capsys.readouterr().out
    # the "Running episodes" block starts from the same start.png; placeholders (THREAD_ID) are skipped
    block = re.search(r"## Running episodes\n\n```bash\n(.*?)```", README.read_text(), re.S)
    assert block
    runnable = [shlex.split(line.split("  #")[0]) for line in block.group(1).splitlines()
                if line.strip() and "THREAD_ID" not in line]
    assert [c[:2] for c in runnable] == [["spiral", "run"], ["spiral", "run"], ["spiral", "backbones"]]
    for command in runnable:
        assert main(command[1:]) == 0, capsys.readouterr().out[-3000:]
    assert (tmp_path / "out" / "summary.json").exists()  # --out out/ as written


def test_ci_runs_the_readmes_set_up_and_test_commands_word_for_word():
    """CI must be green on what a new user types, not on a variant of it (`python -m pytest` once put the
    repository on the path and hid a failure that `pytest` shows)."""
    quick_start = re.search(r"```bash\n(bash setup.sh.*?)```", README.read_text(), re.S)
    assert quick_start
    commands = {line.split("#")[0].strip() for line in quick_start.group(1).splitlines()}
    test_command = next(c for c in commands if c.startswith("pytest"))
    ci = (README.parent / ".ci" / "run").read_text().splitlines()
    assert test_command in ci
    assert "bash setup.sh" in ci and not any("python -m pytest" in line for line in ci)
