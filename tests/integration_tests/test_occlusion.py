"""Objects put into a container or covered by others are expected to be hidden; retries cannot fix that.

Before the ledger's occlusion rules, each of these actions failed every try of
its last sub-actions ("the red cube disappeared from view", "the medium red
cube disappeared", "the small green ball shifted 14 px") and ended partial.
"""

import json

import pytest

from spiral.memory.traces import TraceDB
from spiral.shell.cli import main
from spiral.tools.media import save_png
from spiral.tools.world.compose import scene_from_words
from spiral.tools.world.render import render_scene

pytestmark = pytest.mark.e2e

CROWDED = "large red ball, red cube, small green ball, blue cube, yellow block, bowl, plate"


@pytest.fixture(scope="module")
def crowded_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("occlusion") / "crowded.png"
    save_png(render_scene(scene_from_words(CROWDED, seed=1)), path)
    return path


@pytest.mark.parametrize("action,hidden", [
    ("put every ball in the bowl, then put the red cube in the bowl", "hidden_x"),
    ("put the red cube in the bowl, then put the blue cube in the bowl, then put every ball in the bowl", "housed:"),
    ("put the blue cube on the plate, then put the green ball on the plate, then put the red cube on the plate",
     "housed:"),
])
def test_filling_a_container_passes_first_try_and_the_ledger_knows_where_hidden_things_are(
        action, hidden, crowded_png, tmp_path):
    out = tmp_path / "out"
    assert main(["run", "--image", str(crowded_png), "--action", action, "--difficulty", "easy", "--workspace",
                 str(tmp_path / "ws"), "--out", str(out), "--thread-id", "t", "--no-write-video"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "done" and summary["reason"] == ""
    assert [a["try"] for a in summary["attempts"]] == [0] * len(summary["plan"])  # no retry was spent
    evidence = [a.evidence for a in TraceDB.open(tmp_path / "ws" / "traces.sqlite").attempts("t")]
    assert any(key.startswith(hidden) for e in evidence for key in e)
