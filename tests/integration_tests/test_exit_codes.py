"""The exit code of `spiral run | demo | resume` says how the episode ended, so a script can tell.

0 done (every sub-action passed and the goal holds at the end), 3 partial, 4
generator-call budget spent, 5 waiting for a review, 2 bad input.
"""

import json
import subprocess
import sys

import pytest

from spiral.shell.cli import main
from spiral.tools.media import save_png
from spiral.tools.world.compose import scene_from_words
from spiral.tools.world.render import render_scene

pytestmark = pytest.mark.e2e

TWO_STEPS = "put every ball in the bowl, then stack the blue cube on the green cube"

# outcome, extra arguments, exit code, status in summary.json (None: no episode), reason's beginning
TABLE = [
    ("done", ["--action", "put the red ball in the bowl"], 0, "done", ""),
    ("partial", ["--action", TWO_STEPS, "--difficulty", "hard", "--max-tries", "1", "--max-replans", "0",
                 "--seed", "2"], 3, "partial", "1 of 2 sub-actions were accepted without passing the critic"),
    ("budget spent", ["--action", TWO_STEPS, "--max-calls", "1"], 4, "budget_exhausted",
     "the budget of 1 generator calls ran out at sub-action 2 of 2"),
    ("waiting for review", ["--action", "put the red ball in the bowl", "--review"], 5, None, ""),
    ("grammar error", ["--action", "juggle the red ball"], 2, None, ""),
    ("object not in the image", ["--action", "put the purple cube in the bowl"], 2, None, ""),
]


@pytest.fixture(scope="module")
def start_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("scene") / "start.png"
    save_png(render_scene(scene_from_words("red ball, blue cube, green cube, bowl")), path)
    return path


@pytest.mark.parametrize("outcome,extra,code,status,reason", TABLE, ids=[row[0] for row in TABLE])
def test_exit_code_per_outcome(outcome, extra, code, status, reason, start_png, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)  # a review pauses, as in a script
    out = tmp_path / "out"
    assert main(["run", "--image", str(start_png), "--workspace", str(tmp_path / "ws"), "--out", str(out),
                 "--thread-id", "t", *extra]) == code, capsys.readouterr()
    if status is None:
        assert not (out / "summary.json").exists()
        return
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == status and summary["reason"].startswith(reason), summary["reason"]
    if status != "done":
        assert f"not done: {summary['reason']}" in " ".join(capsys.readouterr().out.split())


def test_the_process_exit_code_is_the_outcome_s(start_png, tmp_path):
    result = subprocess.run([sys.executable, "-m", "spiral.shell.cli", "run", "--image", str(start_png), "--action",
                             TWO_STEPS, "--max-calls", "1", "--workspace", str(tmp_path / "ws")],
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 4, result.stderr[-2000:]


def test_resume_of_a_finished_episode_repeats_its_exit_code(start_png, tmp_path):
    args = ["--workspace", str(tmp_path / "ws")]
    assert main(["run", "--image", str(start_png), "--action", TWO_STEPS, "--max-calls", "1", "--thread-id", "t",
                 *args]) == 4
    assert main(["resume", "t", *args]) == 4
