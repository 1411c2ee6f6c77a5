"""The README's Python example runs as written, and its graph drawing is the live graph's."""

import re
from pathlib import Path

from spiral.graph.drawing import readme_block
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
    example = re.search(r"```python\n(from spiral.graph.config import RunContext\nfrom spiral.graph.events.*?)```",
                        README.read_text(), re.S)
    assert example
    monkeypatch.chdir(tmp_path)
    save_png(render_scene(demo_scene()), tmp_path / "start.png")
    exec(compile(example.group(1), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "plan=Plan(" in out and "attempt=Attempt(" in out and "event='generator_progress'" in out
    assert out.strip().splitlines()[-1].startswith("done ") and out.strip().endswith("video.mp4")
